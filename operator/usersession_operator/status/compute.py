"""Where a UserSession's status is computed: a pure function of what the operator observed.

No I/O here. The operator gathers an Observation from its watches and the last
Redis poll, computes the desired status, and patches only what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from usersession_operator.session.model import DEFAULT_START_TIMEOUT_SECONDS
from usersession_operator.status.conditions import (
    REDIS_UNREACHABLE,
    SCALER_FAILED,
    START_TIMEOUT,
    STORAGE_LOST,
    STORAGE_NOT_BOUND,
    condition,
    keda_message,
    keda_ready,
    redis_condition,
    scaler_condition,
    timestamp,
)


class Phase(StrEnum):
    """status.phase: the one list of phases. Metrics and the session API use it; the
    CRD's and the OpenAPI document's enums are checked against it by unit tests."""

    PENDING = "Pending"
    SLEEPING = "Sleeping"
    WAKING = "Waking"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    DEGRADED = "Degraded"
    TERMINATING = "Terminating"


# lastActivityTime is refreshed at most this often while a session is busy, so
# that a running session costs one status write a minute, not one per poll.
ACTIVITY_RESOLUTION = dt.timedelta(seconds=60)

# Container states that will not fix themselves without a change to the spec
# or the cluster: the session is Degraded, not merely Waking.
_STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class Observation:
    generation: int
    reconciled_generation: int | None  # generation the last reconcile acted on (ok or not)
    deleting: bool
    suspend: bool
    queue_name: str
    children: Mapping[
        str, str
    ]  # {"deployment": name, "scaledObject": ..., "triggerAuthentication": ...}
    deployment: Mapping[str, Any] | None
    scaled_object: Mapping[str, Any] | None
    trigger_authentication: Mapping[str, Any] | None
    pods: Sequence[Mapping[str, Any]] = ()
    queue_depth: int | None = None  # None: not polled yet, or Redis failed
    processing_depth: int | None = None  # messages in flight; None as queue_depth
    # When work was first seen while the session slept; its wake ends at Running.
    wake_started: dt.datetime | None = None
    redis_error: str | None = None
    reconcile_error: str | None = None
    start_timeout_seconds: int = DEFAULT_START_TIMEOUT_SECONDS
    # The session's claim: wanted when spec.storage is set; what the watch shows.
    claim_wanted: bool = False
    claim: Mapping[str, Any] | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def compute_status(obs: Observation, previous: Mapping[str, Any]) -> dict[str, Any]:
    pod = _current_pod(obs.pods)
    desired = int((obs.deployment or {}).get("spec", {}).get("replicas") or 0)
    ready_replicas = int((obs.deployment or {}).get("status", {}).get("readyReplicas") or 0)
    observed_generation = (
        obs.reconciled_generation
        if obs.reconciled_generation is not None
        else previous.get("observedGeneration")
    )
    phase, reason, message = _phase(obs, pod, desired, observed_generation)

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
            "ready": _pod_ready(pod),
        }
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


def wake_start(obs: Observation, previous_phase: str | None) -> dt.datetime | None:
    """When the wake under way began, or None when none is.

    Work seen on a sleeping session's lists starts it (obs.wake_started). KEDA
    polls Redis on its own, though, and can scale up before the operator has
    seen the work: a session found scaled up while its written phase is still
    Sleeping is waking too, since at least its pod's creation (or now, before
    there is a pod). Only a lower bound, but a wake the operator saw late is
    still a wake, and leaving it out would flatter the wake-latency figures.
    """
    if obs.wake_started is not None:
        return obs.wake_started
    replicas = int((obs.deployment or {}).get("spec", {}).get("replicas") or 0)
    if previous_phase != Phase.SLEEPING or replicas < 1:
        return None
    pod = _current_pod(obs.pods)
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


# -- phase -------------------------------------------------------------------


def _phase(
    obs: Observation, pod: Mapping[str, Any] | None, desired: int, observed: int | None
) -> tuple[str, str, str]:
    if obs.deleting:
        return Phase.TERMINATING, Phase.TERMINATING, "the session is being deleted"
    if obs.reconcile_error:
        return Phase.DEGRADED, "ReconcileFailed", obs.reconcile_error
    if observed is None:
        # Children seen through their watches before the first reconcile has
        # finished applying them all: not yet something to promise a wake on.
        return Phase.PENDING, "Reconciling", "the operator is applying the session's children"
    missing = [
        kind
        for kind, child in (
            ("Deployment", obs.deployment),
            ("ScaledObject", obs.scaled_object),
            ("TriggerAuthentication", obs.trigger_authentication),
            ("PersistentVolumeClaim", obs.claim if obs.claim_wanted else {}),
        )
        if child is None
    ]
    if missing:
        return Phase.PENDING, "ChildrenMissing", f"waiting for {', '.join(missing)} to exist"
    stuck = _stuck_reason(pod, desired)
    if stuck:
        return Phase.DEGRADED, stuck[0], stuck[1]
    if _claim_phase(obs) == "Lost":
        return (
            Phase.DEGRADED,
            STORAGE_LOST,
            f"claim {(obs.claim or {})['metadata']['name']} lost its volume",
        )
    if _deadline_exceeded(obs.deployment):
        return (
            Phase.DEGRADED,
            "ProgressDeadlineExceeded",
            "the session's Deployment is not progressing",
        )
    if obs.suspend:
        return (
            Phase.SUSPENDED,
            Phase.SUSPENDED,
            "spec.suspend is true: the session stays at zero replicas",
        )
    # A session that KEDA cannot scale, or whose queue the operator cannot read,
    # will not wake on the next message (nor sleep when idle): Ready must not
    # promise that, whether the pod is up or not.
    keda = keda_ready(obs.scaled_object)
    if keda is not None and keda.get("status") == "False":
        return (
            Phase.DEGRADED,
            SCALER_FAILED,
            f"KEDA cannot scale the session: {keda_message(keda)}",
        )
    if obs.redis_error:
        return Phase.DEGRADED, REDIS_UNREACHABLE, f"cannot read the queue: {obs.redis_error}"
    if pod is not None and _pod_ready(pod):
        return Phase.RUNNING, Phase.RUNNING, f"pod {pod['metadata']['name']} is ready"
    if desired >= 1:
        late = _start_timed_out(obs, pod)
        if late is not None and _claim_phase(obs) not in (None, "Bound"):
            # The usual cause: no volume fits the claim, or none could be provisioned.
            name = (obs.claim or {})["metadata"]["name"]
            return Phase.DEGRADED, STORAGE_NOT_BOUND, f"claim {name} is not bound; {late}"
        if late is not None:
            return Phase.DEGRADED, START_TIMEOUT, late
        return Phase.WAKING, Phase.WAKING, "scaled up; waiting for the pod to become ready"
    return Phase.SLEEPING, Phase.SLEEPING, "scaled to zero; the next message on the queue wakes it"


def _current_pod(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The pod that speaks for the session: pods being deleted never do; then ready
    before not, still-running before finished (a Failed pod, e.g. an evicted one, is
    left behind by its ReplicaSet), newest first."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    if not live:
        return None
    return max(
        live,
        key=lambda p: (
            _pod_ready(p),
            not _pod_finished(p),
            p["metadata"].get("creationTimestamp") or "",
        ),
    )


def _pod_finished(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions", []) or []
    )


def _stuck_reason(pod: Mapping[str, Any] | None, desired: int) -> tuple[str, str] | None:
    if pod is None:
        return None
    status = pod.get("status", {})
    if status.get("phase") == "Failed":
        # At zero replicas a Failed pod is a leftover (ReplicaSets do not delete
        # evicted pods), not a session that needs attention.
        if desired < 1:
            return None
        return "PodFailed", status.get("message") or f"pod {pod['metadata']['name']} failed"
    containers = [
        *(status.get("initContainerStatuses", []) or []),
        *(status.get("containerStatuses", []) or []),
    ]
    for container in containers:
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in _STUCK_REASONS:
            return waiting["reason"], waiting.get("message") or waiting["reason"]
    return None


def _claim_phase(obs: Observation) -> str | None:
    if not obs.claim_wanted or obs.claim is None:
        return None
    return str((obs.claim.get("status") or {}).get("phase") or "Pending")


def _start_timed_out(obs: Observation, pod: Mapping[str, Any] | None) -> str | None:
    """Why a woken session's pod is still not Ready after start_timeout_seconds, or None
    while it still has time. The clock starts when the pod last stopped being Ready
    (for a new pod, about its creation), or, before there is a pod, at the wake."""
    meta, conditions = (pod or {}).get("metadata", {}), (pod or {}).get("status", {})
    unready_since = [
        parse_time(c.get("lastTransitionTime"))
        for c in conditions.get("conditions", []) or []
        if c.get("type") == "Ready" and c.get("status") != "True"
    ]
    moments = [t for t in (parse_time(meta.get("creationTimestamp")), *unready_since) if t]
    started = max(moments) if moments else obs.wake_started
    if started is None:
        return None
    limit = obs.start_timeout_seconds
    if (obs.now - started).total_seconds() < limit:
        return None
    # The limit, not the time waited: a message that changes each poll is a write each poll.
    if pod is None:
        return f"no pod within {limit}s of the wake: {_deployment_trouble(obs.deployment)}"
    return f"pod {pod['metadata']['name']} not ready within {limit}s: {_held_back(pod)}"


def _held_back(pod: Mapping[str, Any]) -> str:
    """What keeps a pod from Ready, in the kubelet's or the scheduler's words."""
    status = pod.get("status", {})
    for cond in status.get("conditions", []) or []:
        # The scheduler's reason: no node fits, an unbound claim, ...
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"{cond.get('reason') or 'Unschedulable'}: {cond.get('message') or ''}".strip()
    for container in [
        *(status.get("initContainerStatuses", []) or []),
        *(status.get("containerStatuses", []) or []),
    ]:
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        if waiting:
            name, reason = container.get("name"), waiting.get("reason")
            return f"container {name} waiting ({reason}) {waiting.get('message') or ''}".strip()
        if "running" in state and not container.get("ready"):
            return f"container {container.get('name')} running but not ready (readiness probe)"
    return f"pod phase {status.get('phase') or 'Pending'}"


def _deployment_trouble(deployment: Mapping[str, Any] | None) -> str:
    for cond in (deployment or {}).get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return cond.get("message") or "the ReplicaSet cannot create the pod"
    return "the Deployment has not created it"


def _deadline_exceeded(deployment: Mapping[str, Any] | None) -> bool:
    return any(
        c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
        for c in (deployment or {}).get("status", {}).get("conditions", []) or []
    )


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


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 time as Kubernetes writes it, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    # The schema's date-time format admits a time without an offset.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
