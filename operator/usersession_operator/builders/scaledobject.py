"""The KEDA ScaledObject that scales the session's Deployment between 0 and 1."""

from __future__ import annotations

from typing import Any

from usersession_operator.builders.owner import child_metadata
from usersession_operator.model import Session
from usersession_operator.names import COMPONENT_SCALER, child_name

KEDA_API_VERSION = "keda.sh/v1alpha1"
PAUSED_REPLICAS_ANNOTATION = "autoscaling.keda.sh/paused-replicas"


def build_scaled_object(session: Session) -> dict[str, Any]:
    metadata = child_metadata(session, COMPONENT_SCALER)
    # Absent rather than empty when not suspended: server-side apply then
    # removes the annotation this manager set, and KEDA resumes scaling.
    if session.suspend:
        metadata["annotations"] = {PAUSED_REPLICAS_ANNOTATION: "0"}
    redis = session.redis
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
            "triggers": [
                {
                    "type": "redis",
                    # KEDA's trigger metadata is a map of strings.
                    "metadata": {
                        "address": redis.address,
                        "listName": session.queue_name,
                        "listLength": str(session.target_length),
                        "activationListLength": str(session.activation_length),
                        "databaseIndex": str(redis.database),
                    },
                    "authenticationRef": {"name": name},
                }
            ],
        },
    }
