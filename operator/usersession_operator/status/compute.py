"""Where a UserSession's status is computed: a pure function of what the operator observed.

No I/O here. The operator gathers an Observation from its watches and the last
Redis poll, computes the desired status, and patches only what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from usersession_operator.session.model import Phase
from usersession_operator.status.conditions import condition, redis_condition, scaler_condition
from usersession_operator.status.observation import Observation
from usersession_operator.status.phase import phase_of
from usersession_operator.status.pods import current_pod, pod_ready
from usersession_operator.status.times import parse_time, timestamp

# lastActivityTime is refreshed at most this often while a session is busy, so
# that a running session costs one status write a minute, not one per poll.
ACTIVITY_RESOLUTION = dt.timedelta(seconds=60)


def compute_status(obs: Observation, previous: Mapping[str, Any]) -> dict[str, Any]:
    pod = current_pod(obs.pods)
    desired = int((obs.deployment or {}).get("spec", {}).get("replicas") or 0)
    ready_replicas = int((obs.deployment or {}).get("status", {}).get("readyReplicas") or 0)
    observed_generation = (
        obs.reconciled_generation
        if obs.reconciled_generation is not None
        else previous.get("observedGeneration")
    )
    phase, reason, message = phase_of(obs, pod, desired, observed_generation)

    depth = obs.queue_depth if obs.queue_depth is not None else previous.get("queueDepth")
    in_flight = (
        obs.processing_depth
        if obs.processing_depth is not None
        else previous.get("processingDepth")
    )
    status: dict[str, Any] = {
        "phase": phase,
        "queueName": obs.queue_name,
        "replicas": desired,
        "readyReplicas": ready_replicas,
        "children": dict(obs.children),
    }
    if observed_generation is not None:
        status["observedGeneration"] = observed_generation
    if depth is not None:
        status["queueDepth"] = depth
    if in_flight is not None:
        status["processingDepth"] = in_flight
    if obs.claim_wanted and obs.claim is not None:
        claim_status = obs.claim.get("status") or {}
        status["storage"] = {
            "claimName": obs.claim["metadata"]["name"],
            "phase": claim_status.get("phase") or "Pending",
        }
        capacity = (claim_status.get("capacity") or {}).get("storage")
        if capacity:
            status["storage"]["capacity"] = capacity
    if pod is not None:
        status["pod"] = {
            "name": pod["metadata"]["name"],
            "phase": pod.get("status", {}).get("phase", "Pending"),
            "ready": pod_ready(pod),
        }
    if obs.wake_started is not None and _waking(obs, phase):
        status["wakeStartedAt"] = timestamp(obs.wake_started)
    if phase == Phase.RUNNING and obs.wake_started is not None:
        status["lastWakeSeconds"] = round((obs.now - obs.wake_started).total_seconds(), 3)
    elif "lastWakeSeconds" in previous:
        status["lastWakeSeconds"] = previous["lastWakeSeconds"]
    last_activity = _last_activity(obs, pod, previous)
    if last_activity is not None:
        status["lastActivityTime"] = last_activity

    old_conditions = {c.get("type"): c for c in previous.get("conditions", []) or []}
    ready_ok = phase in (Phase.RUNNING, Phase.SLEEPING)
    status["conditions"] = [
        condition(old_conditions, "Ready", "True" if ready_ok else "False", reason, message, obs),
        redis_condition(old_conditions, obs),
        scaler_condition(old_conditions, obs),
    ]
    return status


def _waking(obs: Observation, phase: str) -> bool:
    """A timed wake still under way: not over (Running), not called off (Suspended, deleted,
    or asleep again with nothing left to do)."""
    if phase in (Phase.RUNNING, Phase.SUSPENDED, Phase.TERMINATING):
        return False
    busy = (obs.queue_depth or 0) + (obs.processing_depth or 0) > 0
    return phase != Phase.SLEEPING or busy


def wake_start(obs: Observation, previous_phase: str | None) -> dt.datetime | None:
    """When the wake under way began, or None when none is.

    Work seen on a sleeping session's lists starts it (obs.wake_started). KEDA
    polls Redis on its own, though, and can scale up before the operator has
    seen the work: a session found scaled up while its written phase is still
    Sleeping is waking too, since at least its pod's creation (or now, before
    there is a pod). Only a lower bound, but a wake the operator saw late is
    still a wake, and leaving it out would flatter the wake-latency figures.

    Work waiting on a session at zero replicas is a wake whatever phase was last
    written (from now, when first seen so). Found by the long chaos run: work that
    arrived while status said Degraded (Redis restarting) started no clock, so a
    session nothing woke said Sleeping, Ready=True, with a message waiting minutes.
    """
    if obs.wake_started is not None:
        return obs.wake_started
    replicas = int((obs.deployment or {}).get("spec", {}).get("replicas") or 0)
    if replicas < 1:
        return obs.now if obs.work_waiting and not obs.suspend else None
    if previous_phase != Phase.SLEEPING:
        return None
    pod = current_pod(obs.pods)
    created = parse_time((pod or {}).get("metadata", {}).get("creationTimestamp"))
    return min(created, obs.now) if created is not None else obs.now


def status_patch(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning `previous` into `desired`, or None when nothing changed.

    Changed top-level keys carry their whole desired value; removed keys are
    None. A merge patch merges objects rather than replacing them, so a changed
    object value also names its removed keys with None (at any depth); lists
    are replaced whole.
    """
    patch: dict[str, Any] = {}
    for key, value in desired.items():
        if previous.get(key) != value:
            patch[key] = _with_removals(previous.get(key), value)
    for key in previous:
        if key not in desired:
            patch[key] = None
    return patch or None


def _with_removals(previous: Any, desired: Any) -> Any:
    if not (isinstance(previous, Mapping) and isinstance(desired, Mapping)):
        return desired
    merged: dict[str, Any] = {
        key: _with_removals(previous.get(key), value) for key, value in desired.items()
    }
    for key in previous:
        if key not in desired:
            merged[key] = None
    return merged


def _last_activity(
    obs: Observation, pod: Mapping[str, Any] | None, previous_status: Mapping[str, Any]
) -> str | None:
    """When the session was last seen busy: refreshed at most once a minute while it
    is, and once more when it stops, so the idle time that expiry counts starts then."""
    recorded = previous_status.get("lastActivityTime")
    previous = recorded if isinstance(recorded, str) else None
    # Work in flight is activity too: a long task with an empty queue is busy.
    busy = (
        (obs.queue_depth or 0) > 0
        or (obs.processing_depth or 0) > 0
        or (pod is not None and pod.get("status", {}).get("phase") == "Running")
    )
    if not busy:
        was_busy = (
            (previous_status.get("queueDepth") or 0) > 0
            or (previous_status.get("processingDepth") or 0) > 0
            or (previous_status.get("pod") or {}).get("phase") == "Running"
        )
        return timestamp(obs.now) if was_busy else previous
    if previous is not None:
        last = parse_time(previous)
        # A time in the future (a clock that ran ahead, a hand edit) is not kept,
        # or it would never be refreshed until the clock caught up.
        if last is not None and dt.timedelta(0) <= obs.now - last < ACTIVITY_RESOLUTION:
            return previous
    return timestamp(obs.now)
