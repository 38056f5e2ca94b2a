"""The rules of leader election, with client-go's semantics: pure, no I/O.

Two replicas run; the one holding the Lease is the operator, the other waits.
`decide` says what to do with the Lease as read; `claimed` and `released` are the
specs to write; `lost` says when a leader must stop. The elector (elector.py)
applies them through kube/leases.py.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# client-go's usual timings. A standby takes over once the Lease has not changed
# for LEASE_SECONDS by its own clock; the leader gives up (exits) if it could not
# renew for RENEW_DEADLINE_SECONDS, which leaves it two seconds to be gone before
# anyone else may act.
LEASE_SECONDS = 10
RENEW_EVERY_SECONDS = 2.0
RENEW_DEADLINE_SECONDS = 8.0


@dataclass(frozen=True)
class Lease:
    """The parts of a Lease the election reads, as the API server returned them."""

    holder: str  # "" once released
    duration_seconds: int
    renew_time: str | None  # compared for equality only: never against our clock
    acquire_time: str | None
    transitions: int
    resource_version: str

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Lease:
        spec = obj.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration_seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS),
            renew_time=spec.get("renewTime"),
            acquire_time=spec.get("acquireTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(obj["metadata"]["resourceVersion"]),
        )


class Move(enum.Enum):
    CREATE = "create"  # no Lease yet
    ACQUIRE = "acquire"  # released, or its holder stopped renewing
    RENEW = "renew"  # ours already
    WAIT = "wait"  # someone else holds it and is alive


def decide(lease: Lease | None, me: str, unchanged_for: float) -> Move:
    """What to do given the Lease as read and how long it has looked the same to us.

    Expiry is judged by our own clock since we last saw the Lease change, not by
    comparing its renewTime with our clock: another node's clock may be off by
    more than the lease lasts.
    """
    if lease is None:
        return Move.CREATE
    if lease.holder == me:
        return Move.RENEW
    if not lease.holder or unchanged_for >= lease.duration_seconds:
        return Move.ACQUIRE
    return Move.WAIT


class Observer:
    """How long the Lease has been unchanged, measured on this replica's monotonic clock."""

    def __init__(self) -> None:
        self._seen: tuple[str, str | None, str] | None = None
        self._since = 0.0

    def unchanged_for(self, lease: Lease | None, now: float) -> float:
        # Any write changes the resourceVersion; holder and renewTime say the same
        # for a Lease recreated after a deletion.
        seen = None if lease is None else (lease.holder, lease.renew_time, lease.resource_version)
        if seen != self._seen:
            self._seen, self._since = seen, now
        return now - self._since


def micro_time(moment: dt.datetime) -> str:
    """A MicroTime as the API server parses it: always six fractional digits."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claimed(
    lease: Lease | None, me: str, now: dt.datetime, duration: int = LEASE_SECONDS
) -> dict[str, Any]:
    """The Lease's spec with `me` holding it: renewed if it was ours, else taken over."""
    stamp = micro_time(now)
    if lease is not None and lease.holder == me:
        return {
            "holderIdentity": me,
            "leaseDurationSeconds": duration,
            "acquireTime": lease.acquire_time or stamp,
            "renewTime": stamp,
            "leaseTransitions": lease.transitions,
        }
    return {
        "holderIdentity": me,
        "leaseDurationSeconds": duration,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": 0 if lease is None else lease.transitions + 1,
    }


def released(lease: Lease, now: dt.datetime) -> dict[str, Any]:
    """client-go's release: no holder, so a standby takes over at its next look."""
    stamp = micro_time(now)
    return {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "acquireTime": stamp,
        "renewTime": stamp,
        "leaseTransitions": lease.transitions,
    }


def lost(last_renewed: float, now: float, deadline: float = RENEW_DEADLINE_SECONDS) -> bool:
    """The leader must stop: it could not renew for the deadline, so a standby may
    soon (the lease duration after its last look) take over."""
    return now - last_renewed > deadline
