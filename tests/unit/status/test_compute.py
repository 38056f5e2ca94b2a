"""compute_status over time: queue depths, Redis, wake timing, activity, no writes while idle."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from support.statuses import (
    NOW,
    QUEUE,
    as_served,
    condition,
    deployment,
    observe,
    pod,
    ts,
)
from usersession_operator.status.compute import (
    ACTIVITY_RESOLUTION,
    compute_status,
    status_patch,
    wake_start,
)
from usersession_operator.status.observation import Observation

# -- queue depth and Redis --------------------------------------------------------


def test_queue_depth_is_reported() -> None:
    assert compute_status(observe(queue_depth=7), {"queueDepth": 3})["queueDepth"] == 7
    assert compute_status(observe(queue_depth=0), {"queueDepth": 3})["queueDepth"] == 0


def test_queue_depth_falls_back_to_the_previous_value() -> None:
    assert compute_status(observe(queue_depth=None), {"queueDepth": 4})["queueDepth"] == 4
    assert "queueDepth" not in compute_status(observe(queue_depth=None), {})


def test_messages_in_flight_are_reported_next_to_the_queue() -> None:
    status = compute_status(observe(queue_depth=0, processing_depth=1), {"queueDepth": 3})
    assert (status["queueDepth"], status["processingDepth"]) == (0, 1)
    # Between polls, or when one failed, the last reading stands.
    kept = compute_status(observe(queue_depth=None), {"queueDepth": 0, "processingDepth": 2})
    assert kept["processingDepth"] == 2
    assert "processingDepth" not in compute_status(observe(queue_depth=None), {})


def test_children_seen_before_the_first_reconcile_finished_are_not_yet_sleeping() -> None:
    # Watch events can show all three children while the first reconcile is
    # still applying the last one: Ready=True would be a promise made too early.
    status = compute_status(observe(reconciled_generation=None), {})
    assert (status["phase"], condition(status, "Ready")["reason"]) == ("Pending", "Reconciling")
    # After a restart the last written status still vouches for the generation.
    restarted = compute_status(observe(reconciled_generation=None), {"observedGeneration": 3})
    assert restarted["phase"] == "Sleeping"


def test_a_wake_is_timed_from_work_first_seen_to_running() -> None:
    running = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(ready=True)],
        queue_depth=1,
        wake_started=NOW - dt.timedelta(seconds=2.5),
    )
    assert compute_status(running, {})["lastWakeSeconds"] == 2.5
    # Not Running yet: no figure; later it is kept until the next wake.
    waking = observe(deployment_=deployment(replicas=1), wake_started=NOW)
    assert "lastWakeSeconds" not in compute_status(waking, {})
    asleep = compute_status(observe(queue_depth=0), {"lastWakeSeconds": 0.8})
    assert asleep["lastWakeSeconds"] == 0.8


def test_a_wake_keda_began_before_the_operator_saw_the_work_still_counts() -> None:
    # Written Sleeping, found scaled up with no work seen yet: KEDA read the queue
    # first. The wake began no later than the pod's creation.
    scaled = observe(deployment_=deployment(replicas=1), pods=[pod(ready=False)])
    assert wake_start(scaled, "Sleeping") == dt.datetime(2025, 3, 14, 11, 58, tzinfo=dt.UTC)
    # Before the pod exists: from now, when the scale-up is seen.
    assert wake_start(observe(deployment_=deployment(replicas=1)), "Sleeping") == NOW
    # Work seen first gives the earlier, true start.
    seen = NOW - dt.timedelta(seconds=9)
    assert wake_start(observe(wake_started=seen, pods=[pod()]), "Sleeping") == seen


def test_no_wake_without_a_sleeping_session_scaled_up() -> None:
    up = observe(deployment_=deployment(replicas=1), pods=[pod()])
    # A pod replaced while the session ran is a restart, not a wake.
    assert wake_start(up, "Running") is None
    assert wake_start(up, "Waking") is None
    assert wake_start(up, None) is None
    assert wake_start(observe(), "Sleeping") is None  # still at zero


def test_work_waiting_at_zero_replicas_is_a_wake_whatever_was_written() -> None:
    waiting = observe(queue_depth=1)
    for written in ("Degraded", "Running", "Pending", None):
        assert wake_start(waiting, written) == NOW, written
    assert wake_start(observe(processing_depth=1), "Degraded") == NOW
    # Not a wake: at or below activationLength, suspended, or no work at all.
    assert wake_start(observe(queue_depth=1, activation_length=1), "Degraded") is None
    assert wake_start(observe(queue_depth=1, suspend=True), "Suspended") is None
    assert wake_start(observe(queue_depth=0), "Degraded") is None


def test_redis_reachable_after_a_poll() -> None:
    redis = condition(compute_status(observe(queue_depth=0), {}), "RedisReachable")
    assert (redis["status"], redis["reason"]) == ("True", "QueuePolled")
    assert QUEUE in redis["message"]


def test_redis_error_is_reported_and_the_last_depth_kept() -> None:
    error = "Error 111 connecting to redis.platform.svc:6379. Connection refused."
    status = compute_status(
        observe(queue_depth=None, redis_error=error, now=NOW + dt.timedelta(seconds=10)),
        compute_status(observe(queue_depth=5), {}),
    )
    redis = condition(status, "RedisReachable")
    assert (redis["status"], redis["reason"], redis["message"]) == ("False", "RedisError", error)
    assert redis["lastTransitionTime"] == ts(NOW + dt.timedelta(seconds=10))
    assert status["queueDepth"] == 5


def test_redis_unknown_before_the_first_poll() -> None:
    redis = condition(compute_status(observe(queue_depth=None), {}), "RedisReachable")
    assert (redis["status"], redis["reason"]) == ("Unknown", "NotPolledYet")


@pytest.mark.parametrize("error", [None, "timeout"])
def test_redis_condition_unchanged_between_polls(error: str | None) -> None:
    polled = compute_status(observe(queue_depth=None if error else 2, redis_error=error), {})
    later = compute_status(
        observe(queue_depth=None, reconciled_generation=4, now=NOW + dt.timedelta(minutes=3)),
        polled,
    )
    assert condition(later, "RedisReachable") == condition(polled, "RedisReachable")


def test_redis_recovery_flips_the_condition_back() -> None:
    failed = compute_status(observe(queue_depth=None, redis_error="timeout"), {})
    later = NOW + dt.timedelta(minutes=2)
    redis = condition(compute_status(observe(queue_depth=0, now=later), failed), "RedisReachable")
    assert (redis["status"], redis["lastTransitionTime"]) == ("True", ts(later))


# -- lastActivityTime ------------------------------------------------------------


def test_non_empty_queue_is_activity() -> None:
    status = compute_status(observe(deployment_=deployment(replicas=1), queue_depth=3), {})
    assert status["lastActivityTime"] == ts(NOW)


def test_running_pod_is_activity_even_with_an_empty_queue() -> None:
    obs = observe(deployment_=deployment(replicas=1), pods=[pod(ready=False)], queue_depth=0)
    assert compute_status(obs, {})["lastActivityTime"] == ts(NOW)


def test_a_message_in_flight_is_activity_even_with_an_empty_queue() -> None:
    # The pod is not Running here, so only the processing list makes it busy.
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False)],
        queue_depth=0,
        processing_depth=1,
    )
    assert compute_status(obs, {})["lastActivityTime"] == ts(NOW)


def test_pending_pod_and_empty_queue_is_not_activity() -> None:
    obs = observe(deployment_=deployment(replicas=1), pods=[pod(phase="Pending", ready=False)])
    assert "lastActivityTime" not in compute_status(obs, {})


@pytest.mark.parametrize(
    ("age", "kept"),
    [
        (dt.timedelta(0), True),
        (dt.timedelta(seconds=30), True),
        (ACTIVITY_RESOLUTION - dt.timedelta(seconds=1), True),
        (ACTIVITY_RESOLUTION, False),
        (dt.timedelta(minutes=5), False),
    ],
)
def test_busy_session_refreshes_activity_at_most_once_per_resolution(
    age: dt.timedelta, kept: bool
) -> None:
    previous = {"lastActivityTime": ts(NOW - age)}
    status = compute_status(observe(deployment_=deployment(replicas=1), queue_depth=1), previous)
    assert status["lastActivityTime"] == (ts(NOW - age) if kept else ts(NOW))


@pytest.mark.parametrize("previous", [{}, {"lastActivityTime": "2025-03-01T08:00:00Z"}])
def test_idle_session_keeps_its_last_activity(previous: dict[str, Any]) -> None:
    status = compute_status(observe(queue_depth=0), previous)
    assert status.get("lastActivityTime") == previous.get("lastActivityTime")


def test_unparsable_activity_time_is_replaced_when_busy() -> None:
    status = compute_status(observe(queue_depth=1), {"lastActivityTime": "yesterday"})
    assert status["lastActivityTime"] == ts(NOW)


def test_activity_time_without_offset_is_read_as_utc() -> None:
    # The CRD's date-time format admits a time without an offset; it must not crash.
    recent = (NOW - dt.timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%S")
    stale = (NOW - dt.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S")
    assert (
        compute_status(observe(queue_depth=1), {"lastActivityTime": recent})["lastActivityTime"]
        == recent
    )
    assert compute_status(observe(queue_depth=1), {"lastActivityTime": stale})[
        "lastActivityTime"
    ] == ts(NOW)


def test_activity_time_in_the_future_is_replaced_when_busy() -> None:
    future = ts(NOW + dt.timedelta(days=30))
    status = compute_status(observe(queue_depth=1), {"lastActivityTime": future})
    assert status["lastActivityTime"] == ts(NOW)


# -- the zero-writes property of idle sessions -------------------------------------


@pytest.mark.parametrize(
    "later",
    [
        dt.timedelta(seconds=1),
        dt.timedelta(seconds=30),
        dt.timedelta(seconds=59),
        dt.timedelta(seconds=61),
        dt.timedelta(minutes=10),
        dt.timedelta(days=3),
    ],
)
@pytest.mark.parametrize("depth_later", [0, None], ids=["polled", "between-polls"])
@pytest.mark.parametrize("once_busy", [False, True], ids=["never-busy", "once-busy"])
def test_idle_session_needs_no_status_write(
    later: dt.timedelta, depth_later: int | None, once_busy: bool
) -> None:
    start: dict[str, Any] = (
        {"lastActivityTime": ts(NOW - dt.timedelta(hours=1))} if once_busy else {}
    )
    first = compute_status(observe(), start)
    assert status_patch(start, first) is not None
    written = as_served(first)
    second = compute_status(observe(queue_depth=depth_later, now=NOW + later), written)
    assert status_patch(written, second) is None


def test_busy_session_writes_at_most_once_per_resolution() -> None:
    def busy(at: dt.datetime) -> Observation:
        return observe(
            deployment_=deployment(replicas=1, ready=1), pods=[pod()], queue_depth=0, now=at
        )

    written = as_served(compute_status(busy(NOW), {}))
    assert (
        status_patch(written, compute_status(busy(NOW + dt.timedelta(seconds=30)), written)) is None
    )
    later = NOW + dt.timedelta(seconds=61)
    assert status_patch(written, compute_status(busy(later), written)) == {
        "lastActivityTime": ts(later)
    }
