"""The conditions of a UserSession's status, and when one deserves a Warning event.

Pure, like the rest of status/: phase.py and compute.py call these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usersession_operator.status.observation import Observation
from usersession_operator.status.times import timestamp

# Ready reasons saying the session will not wake (or its spec was not applied):
# worth a Warning event when they appear.
SCALER_FAILED, REDIS_UNREACHABLE = "ScalerFailed", "RedisUnreachable"
RECONCILE_FAILED = "ReconcileFailed"
# Not a reason for a Warning: every new session has it until KEDA takes it on.
SCALER_NOT_READY = "ScalerNotReady"
START_TIMEOUT, WAKE_TIMEOUT = "StartTimeout", "WakeTimeout"
STORAGE_NOT_BOUND, STORAGE_LOST = "StorageNotBound", "StorageLost"


def new_warning(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a Warning event when `desired` newly says the session will not wake.

    Only on the transition: a session that stays broken is not re-announced on every poll.
    """
    after = ready_condition(desired)
    reason = after.get("reason")
    if reason not in (
        RECONCILE_FAILED,
        SCALER_FAILED,
        REDIS_UNREACHABLE,
        START_TIMEOUT,
        WAKE_TIMEOUT,
        STORAGE_NOT_BOUND,
        STORAGE_LOST,
    ):
        return None
    if ready_condition(previous).get("reason") == reason:
        return None
    return reason, after.get("message") or ""


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any]:
    conditions = status.get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def condition(
    old: Mapping[str, Mapping[str, Any]],
    type_: str,
    status: str,
    reason: str,
    message: str,
    obs: Observation,
) -> dict[str, Any]:
    before = old.get(type_)
    # The transition time moves only when the status flips, as Kubernetes conventions say.
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        since = before["lastTransitionTime"]
    else:
        since = timestamp(obs.now)
    condition = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
    }
    if obs.reconciled_generation is not None:
        condition["observedGeneration"] = obs.reconciled_generation
    elif before is not None and "observedGeneration" in before:
        condition["observedGeneration"] = before["observedGeneration"]
    return condition


def redis_condition(old: Mapping[str, Mapping[str, Any]], obs: Observation) -> dict[str, Any]:
    if obs.redis_error:
        return condition(old, "RedisReachable", "False", "RedisError", obs.redis_error, obs)
    if obs.queue_depth is None:
        previous = old.get("RedisReachable")
        if previous is not None:  # between polls, keep what the last poll said
            return dict(previous)
        return condition(
            old,
            "RedisReachable",
            "Unknown",
            "NotPolledYet",
            "the queue has not been polled yet",
            obs,
        )
    return condition(
        old, "RedisReachable", "True", "QueuePolled", f"queue {obs.queue_name} is readable", obs
    )


def keda_ready(scaled_object: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """KEDA's own Ready condition on the ScaledObject, if it reported one."""
    return next(
        (
            c
            for c in (scaled_object or {}).get("status", {}).get("conditions", []) or []
            if c.get("type") == "Ready"
        ),
        None,
    )


def keda_has_judged(keda: Mapping[str, Any] | None) -> bool:
    """Whether KEDA has taken the ScaledObject on: until it has, it runs no scale loop
    for it, so nothing wakes the session. KEDA starts its conditions at Unknown with no
    reason at all, as before it wrote any status."""
    if keda is None or keda.get("status") not in ("True", "False", "Unknown"):
        return False
    return not (keda.get("status") == "Unknown" and not keda.get("reason"))


def keda_message(keda: Mapping[str, Any]) -> str:
    return keda.get("message") or keda.get("reason") or "its Ready condition is False"


def scaler_condition(old: Mapping[str, Mapping[str, Any]], obs: Observation) -> dict[str, Any]:
    keda = keda_ready(obs.scaled_object)
    # Not judged yet, said once (not twice, in two wordings): a new session saves a
    # status write.
    if keda is None or not keda_has_judged(keda):
        return condition(
            old,
            "ScalerReady",
            "Unknown",
            "NoScalerStatus",
            "KEDA has not reported on the ScaledObject yet",
            obs,
        )
    fallback = {"True": "KedaReady", "False": "KedaNotReady", "Unknown": "KedaUnknown"}
    return condition(
        old,
        "ScalerReady",
        keda["status"],
        keda.get("reason") or fallback[keda["status"]],
        keda.get("message") or "",
        obs,
    )
