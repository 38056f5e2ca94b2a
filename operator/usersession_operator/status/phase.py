"""The phase of a session and the Ready reason behind it: the one decision of status.

Checked in order of what a user must hear first: going away, a spec the operator
could not apply, children missing, a pod that cannot start, storage lost, a
Deployment stuck, suspended, KEDA or Redis failing (so no wake is promised), then
Running, Waking (or late: StartTimeout) and Sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usersession_operator.session.model import Phase
from usersession_operator.status.conditions import (
    RECONCILE_FAILED,
    REDIS_UNREACHABLE,
    SCALER_FAILED,
    SCALER_NOT_READY,
    START_TIMEOUT,
    STORAGE_LOST,
    STORAGE_NOT_BOUND,
    WAKE_TIMEOUT,
    keda_has_judged,
    keda_message,
    keda_ready,
)
from usersession_operator.status.observation import Observation
from usersession_operator.status.pods import held_back, pod_ready, stuck_reason
from usersession_operator.status.times import parse_time


def phase_of(
    obs: Observation, pod: Mapping[str, Any] | None, desired: int, observed: int | None
) -> tuple[str, str, str]:
    if obs.deleting:
        return Phase.TERMINATING, Phase.TERMINATING, "the session is being deleted"
    if obs.reconcile_error:
        return Phase.DEGRADED, RECONCILE_FAILED, obs.reconcile_error
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
    stuck = stuck_reason(pod, desired)
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
    if keda is not None and keda.get("status") == "False" and not _only_push_failing(obs, keda):
        return (
            Phase.DEGRADED,
            SCALER_FAILED,
            f"KEDA cannot scale the session: {keda_message(keda)}",
        )
    if obs.redis_error:
        return Phase.DEGRADED, REDIS_UNREACHABLE, f"cannot read the queue: {obs.redis_error}"
    if pod is None and desired < 1 and not keda_has_judged(keda):
        # Found by the chaos run: KEDA works through its ScaledObjects a few at a time
        # (KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES), and one it has not reached has no
        # scale loop yet. Asleep, it would not wake on a message: not Ready.
        return (
            Phase.PENDING,
            SCALER_NOT_READY,
            "waiting for KEDA to take on the ScaledObject; until then nothing wakes the session",
        )
    if pod is not None and pod_ready(pod):
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
    unwoken = _not_woken(obs)
    if unwoken is not None:
        return Phase.DEGRADED, WAKE_TIMEOUT, unwoken
    return Phase.SLEEPING, Phase.SLEEPING, "scaled to zero; the next message on the queue wakes it"


def _not_woken(obs: Observation) -> str | None:
    """Why a sleeping session with work waiting is not woken, once it has waited the start
    timeout: Ready promised the next message wakes it, and nothing scaled it up (KEDA
    down or not acting). Messages at or below activationLength wait asleep by design."""
    if not obs.work_waiting or obs.wake_started is None:
        return None
    limit = obs.start_timeout_seconds
    if (obs.now - obs.wake_started).total_seconds() < limit:
        return None
    return f"work has waited {limit}s and the session was not scaled up: is KEDA running?"


def _only_push_failing(obs: Observation, keda: Mapping[str, Any]) -> bool:
    """KEDA's TriggerError names no trigger. With the push path on, the queue read fine
    by the operator (the same Redis KEDA's redis trigger reads), it is the push trigger
    failing: the operator restarting, a failover. The session still wakes, at KEDA's
    own poll of the queue, so Ready stays True (ScalerReady says what KEDA said)."""
    return (
        obs.push_trigger
        and keda.get("reason") == "TriggerError"
        and obs.redis_error is None
        and obs.queue_depth is not None
    )


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
    return f"pod {pod['metadata']['name']} not ready within {limit}s: {held_back(pod)}"


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
