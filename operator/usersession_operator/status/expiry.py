"""When an abandoned session is deleted (spec.expireAfterIdleSeconds).

Deletion goes through the API server, so the finalizer removes the session's
Redis keys as for any other deletion. Only a session known to hold nothing is
ever expired: one the operator last saw asleep, with both lists read as empty.
Whatever is waiting or in flight keeps it, however long ago it last ran.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from usersession_operator.session.model import Phase
from usersession_operator.state import QueueReading
from usersession_operator.status.times import parse_time


def expired(
    limit_seconds: int | None,
    body: Mapping[str, Any],
    written_status: Mapping[str, Any],
    reading: QueueReading | None,
    now: dt.datetime,
) -> bool:
    """Whether the session has been idle for limit_seconds and holds nothing."""
    if limit_seconds is None or body.get("metadata", {}).get("deletionTimestamp"):
        return False
    # The operator's own latest word, not a status read back from an older event.
    if written_status.get("phase") != Phase.SLEEPING:
        return False
    # Both lists read, both empty: messages below activationLength wait asleep too.
    if reading is None or reading.error is not None or reading.busy or reading.depth is None:
        return False
    # Last busy, or created if it never was.
    since = parse_time(written_status.get("lastActivityTime")) or parse_time(
        body.get("metadata", {}).get("creationTimestamp")
    )
    return since is not None and (now - since).total_seconds() >= limit_seconds
