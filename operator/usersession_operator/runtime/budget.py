"""What the operator may use: its memory limit, and the session count it is sized for.

The limit is read once at start: the chart passes the container's limit through
the downward API (USERSESSION_MEMORY_LIMIT, in bytes), else the cgroup says it
(v2 memory.max, v1 memory.limit_in_bytes). Exported beside the process's RSS, so
an alert fires while there is still room (charts/.../monitoring/alerts.yaml).

The capacity (USERSESSION_CAPACITY; the chart's default is the count its default
limits were measured to hold, docs/operations.md "Sizing") is a promise, not a
cap: past it the operator says so, once in its log and in an event, and the
metric shows it for as long as it lasts; it never refuses sessions or stops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from usersession_operator import metrics

CGROUP_V2 = Path("/sys/fs/cgroup/memory.max")
CGROUP_V1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
# cgroup v1 writes "no limit" as a number near 2**63, rounded to the page size.
_UNLIMITED_V1 = 1 << 60
# Once past capacity, say so again only after the count fell back below this share.
_REARM_BELOW = 0.9


def memory_limit(
    env: Mapping[str, str] | None = None, v2: Path = CGROUP_V2, v1: Path = CGROUP_V1
) -> int | None:
    """The memory limit in bytes, or None when there is none to be found."""
    env = os.environ if env is None else env
    given = (env.get("USERSESSION_MEMORY_LIMIT") or "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    for path in (v2, v1):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < _UNLIMITED_V1:
            return int(text)
        if text == "max" or text.isdigit():
            return None  # this cgroup sets none
    return None


class Capacity:
    """Compares the session count with what the operator was sized for."""

    def __init__(self, sessions: int) -> None:
        self.sessions = sessions  # 0: not stated
        self._warned = False
        metrics.CAPACITY.set(sessions)

    def exceeded_now(self, count: int) -> bool:
        """True once each time the count goes past the capacity (then it waits until the
        count is well below before it can say so again)."""
        if not self.sessions:
            return False
        if count > self.sessions and not self._warned:
            self._warned = True
            return True
        if count < self.sessions * _REARM_BELOW:
            self._warned = False
        return False

    def message(self, count: int) -> str:
        return (
            f"{count} UserSessions exceed the {self.sessions} this operator is sized for "
            "(USERSESSION_CAPACITY): a takeover may need more memory than its limit. "
            "Raise the memory limit and the capacity together (docs/operations.md, "
            '"Sizing"), or shard sessions across releases by namespace'
        )
