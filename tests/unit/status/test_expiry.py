"""Which sessions expire: only ones idle long enough that hold nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from usersession_operator.state import QueueReading
from usersession_operator.status.expiry import expired

NOW = dt.datetime(2025, 3, 14, 12, 0, 0, tzinfo=dt.UTC)
BODY = {"metadata": {"name": "alice", "creationTimestamp": "2025-03-14T10:00:00Z"}}
ASLEEP = {"phase": "Sleeping", "lastActivityTime": "2025-03-14T11:00:00Z"}  # an hour ago
EMPTY = QueueReading(0, 0)


def test_a_session_asleep_and_empty_past_its_limit_expires() -> None:
    assert expired(3600, BODY, ASLEEP, EMPTY, NOW)
    assert not expired(3601, BODY, ASLEEP, EMPTY, NOW)


def test_without_any_activity_the_idle_time_counts_from_creation() -> None:
    never_busy = {"phase": "Sleeping"}
    assert expired(7200, BODY, never_busy, EMPTY, NOW)
    assert not expired(7201, BODY, never_busy, EMPTY, NOW)


def test_off_by_default() -> None:
    assert not expired(None, BODY, ASLEEP, EMPTY, NOW)


@pytest.mark.parametrize(
    "reading",
    [
        QueueReading(1, 0),  # waiting below activationLength, asleep: still not lost
        QueueReading(0, 1),  # in flight
        QueueReading(None, error="ConnectionError"),  # unknown is not empty
        None,  # never read
    ],
)
def test_anything_waiting_in_flight_or_unknown_keeps_the_session(
    reading: QueueReading | None,
) -> None:
    assert not expired(60, BODY, ASLEEP, reading, NOW)


@pytest.mark.parametrize("phase", ["Running", "Waking", "Degraded", "Suspended", "Pending"])
def test_only_a_sleeping_session_expires(phase: str) -> None:
    assert not expired(60, BODY, {**ASLEEP, "phase": phase}, EMPTY, NOW)


def test_a_session_being_deleted_is_left_to_its_finalizer() -> None:
    deleting: dict[str, Any] = {
        "metadata": {**BODY["metadata"], "deletionTimestamp": "2025-03-14T11:59:00Z"}
    }
    assert not expired(60, deleting, ASLEEP, EMPTY, NOW)
