"""The KEDA ScaledObject that scales the session's Deployment between 0 and 1.

A redis trigger on the queue (work waiting), authenticated by the session's
TriggerAuthentication; the operator's external-push trigger when fast wake is
on; a redis trigger on the processing list (work in flight) when it is off; a
cron trigger per warm schedule.

Work in flight keeps a session up through the push trigger, which reports
waiting plus in flight, so the second redis trigger is only needed without it.
Each redis trigger is a Redis client of KEDA's that polls every interval and
keeps a connection open: one per idle session instead of two halves what KEDA
costs Redis (at 5,000 sessions two would be past Redis's default maxclients).
With the operator down, KEDA sees the push trigger fail and scales nothing down
(ScaledObject Ready=False, TriggerError) while the queue trigger still wakes.
"""

from __future__ import annotations

from typing import Any

from usersession_operator.builders.owner import child_metadata
from usersession_operator.session.keys import processing_key
from usersession_operator.session.model import WEEKDAYS, Session, WarmSchedule
from usersession_operator.session.names import COMPONENT_SCALER, child_name

KEDA_API_VERSION = "keda.sh/v1alpha1"
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"
PUSH_TRIGGER = "fast-wake"


def build_scaled_object(session: Session) -> dict[str, Any]:
    metadata = child_metadata(session, COMPONENT_SCALER)
    # Absent rather than empty when not suspended: server-side apply then
    # removes the annotation this manager set, and KEDA resumes scaling.
    if session.suspend:
        metadata["annotations"] = {PAUSED_REPLICAS_ANNOTATION: "0"}
    name = child_name(session.name)
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"name": name},
            "pollingInterval": session.polling_interval_seconds,
            "cooldownPeriod": session.idle_timeout_seconds,
            "minReplicaCount": 0,
            "maxReplicaCount": 1,
            # KEDA keeps the session up while any trigger is active, and its
            # cooldown counts from when the last one went quiet: so a message
            # the worker has taken (moved to the processing list) keeps the
            # session awake until it is handled, and one a dead worker left
            # behind wakes the session by itself.
            "triggers": [
                _redis_trigger(
                    session,
                    "queue",
                    session.queue_name,
                    session.target_length,
                    session.activation_length,
                ),
                *_in_flight_trigger(session),
                *_push_trigger(session),
                *(_warm_trigger(i, w) for i, w in enumerate(session.warm_schedules)),
            ],
        },
    }


def _in_flight_trigger(session: Session) -> list[dict[str, Any]]:
    if not session.processing_trigger:
        return []
    return [_redis_trigger(session, "in-flight", processing_key(session.queue_name), 1, 0)]


def _push_trigger(session: Session) -> list[dict[str, Any]]:
    """The fast path: the operator tells KEDA the moment work arrives.

    Only added to the redis triggers, never instead of them: if the operator is
    down, KEDA still wakes the session on its own poll of the lists.
    """
    if not session.push_address:
        return []
    metadata = {"scalerAddress": session.push_address}
    if session.push_tls:
        # Server authentication only: KEDA checks the operator's certificate
        # against the CAs it trusts, so no CA or key has to sit in every namespace.
        metadata["enableTLS"] = "true"
    return [{"type": "external-push", "name": PUSH_TRIGGER, "metadata": metadata}]


def _warm_trigger(index: int, window: WarmSchedule) -> dict[str, Any]:
    """KEDA's cron trigger holds one replica from start to end, idle or not.

    The queue triggers still count inside the window, and cooldownPeriod still
    applies after it: a session busy at the end of its window stays up.
    """
    # Cron numbers days from Sunday = 0; WEEKDAYS starts on Monday.
    days = (
        "*"
        if set(window.days) == set(WEEKDAYS)
        else ",".join(str((WEEKDAYS.index(d) + 1) % 7) for d in window.days)
    )

    def cron(clock: str) -> str:
        hours, minutes = clock.split(":")
        return f"{int(minutes)} {int(hours)} * * {days}"

    return {
        "type": "cron",
        "name": f"warm-{index}",
        "metadata": {
            "timezone": window.timezone,
            "start": cron(window.start),
            "end": cron(window.end),
            "desiredReplicas": "1",
        },
    }


def _redis_trigger(
    session: Session, trigger_name: str, list_name: str, length: int, activation: int
) -> dict[str, Any]:
    redis = session.redis
    # KEDA's trigger metadata is a map of strings.
    metadata = {
        "address": redis.address,
        "listName": list_name,
        "listLength": str(length),
        "activationListLength": str(activation),
        "databaseIndex": str(redis.database),
    }
    if redis.tls is not None:
        # Here rather than as the TriggerAuthentication's "tls" parameter, which
        # would have to come from a Secret: it is not a secret. KEDA verifies the
        # server against the address's host (it has no server-name setting).
        metadata["enableTLS"] = "true"
    return {
        "type": "redis",
        "name": trigger_name,
        "metadata": metadata,
        "authenticationRef": {"name": child_name(session.name)},
    }
