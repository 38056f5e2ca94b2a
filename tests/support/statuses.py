"""Builders of what the operator observes of a session, for status tests: a healthy
sleeping session by default, any part overridden."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

from usersession_operator.session.model import Phase
from usersession_operator.status.observation import Observation

NOW = dt.datetime(2025, 3, 14, 12, 0, 0, tzinfo=dt.UTC)
NAMESPACE = "team-a"
NAME = "alice"
QUEUE = "session:alice"
UID = "0b6f3c1e-1111-4222-8333-944455556666"
CHILDREN = {"deployment": NAME, "scaledObject": NAME, "triggerAuthentication": NAME}


def ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "usersession",
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/managed-by": "usersession-operator",
        "app.kubernetes.io/component": component,
    }


def _metadata(component: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": NAME,
        "namespace": NAMESPACE,
        "uid": f"{component}-uid",
        "resourceVersion": "4711",
        "generation": 1,
        "creationTimestamp": "2025-03-14T11:00:00Z",
        "labels": _labels(component),
        "ownerReferences": [
            {
                "apiVersion": "sessions.ai-infra.dev/v1alpha1",
                "kind": "UserSession",
                "name": NAME,
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        **extra,
    }


def deployment(
    replicas: int = 0, ready: int = 0, progress_deadline_exceeded: bool = False
) -> dict[str, Any]:
    """A Deployment as the API server returns it (zero counts are omitted from status)."""
    progressing: dict[str, Any] = {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetAvailable",
        "message": f'ReplicaSet "{NAME}-5d8f7c9b6d" has successfully progressed.',
        "lastUpdateTime": "2025-03-14T11:00:05Z",
        "lastTransitionTime": "2025-03-14T11:00:00Z",
    }
    if progress_deadline_exceeded:
        progressing.update(
            status="False",
            reason="ProgressDeadlineExceeded",
            message=f'ReplicaSet "{NAME}-5d8f7c9b6d" has timed out progressing.',
        )
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Available",
                "status": "True" if ready >= replicas else "False",
                "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.",
                "lastUpdateTime": "2025-03-14T11:00:05Z",
                "lastTransitionTime": "2025-03-14T11:00:05Z",
            },
            progressing,
        ],
    }
    if replicas:
        status.update(replicas=replicas, updatedReplicas=replicas)
    if ready:
        status.update(readyReplicas=ready, availableReplicas=ready)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            "session-worker", annotations={"deployment.kubernetes.io/revision": "1"}
        ),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _labels("session-worker")},
            "strategy": {"type": "Recreate"},
            "revisionHistoryLimit": 2,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": _labels("session-worker")},
                "spec": {
                    "containers": [
                        {
                            "name": "session",
                            "image": "registry.example.com/session-worker:0.1.0",
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {},
                        }
                    ],
                    "restartPolicy": "Always",
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                },
            },
        },
        "status": status,
    }


def pod(
    name: str = f"{NAME}-5d8f7c9b6d-x7k2p",
    *,
    phase: str = "Running",
    ready: bool = True,
    created: str = "2025-03-14T11:58:00Z",
    waiting: str | None = None,
    waiting_message: str | None = None,
    init_waiting: str | None = None,
    deleting: bool = False,
    message: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A session pod as the API server returns it."""
    state: dict[str, Any]
    if waiting:
        state = {"waiting": {"reason": waiting}}
        if waiting_message:
            state["waiting"]["message"] = waiting_message
    elif phase == "Running":
        state = {"running": {"startedAt": created}}
    elif phase == "Failed":
        state = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": created}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    metadata: dict[str, Any] = {
        "name": name,
        "generateName": f"{NAME}-5d8f7c9b6d-",
        "namespace": NAMESPACE,
        "uid": f"{name}-uid",
        "creationTimestamp": created,
        "labels": {**_labels("session-worker"), "pod-template-hash": "5d8f7c9b6d"},
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{NAME}-5d8f7c9b6d",
                "uid": "rs-uid",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    if deleting:
        metadata["deletionTimestamp"] = "2025-03-14T11:59:30Z"
        metadata["deletionGracePeriodSeconds"] = 30
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": created},
            {"type": "Initialized", "status": "True", "lastTransitionTime": created},
            {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": created},
            {"type": "Ready", "status": str(ready), "lastTransitionTime": created},
        ],
        "hostIP": "10.0.0.5",
        "podIP": "10.244.1.17",
        "startTime": created,
        "containerStatuses": [
            {
                "name": "session",
                "image": "registry.example.com/session-worker:0.1.0",
                "imageID": "",
                "ready": ready,
                "restartCount": 3 if waiting == "CrashLoopBackOff" else 0,
                "started": phase == "Running",
                "state": state,
            }
        ],
    }
    if init_waiting:
        status["initContainerStatuses"] = [
            {
                "name": "istio-init",
                "image": "docker.io/istio/proxyv2:1.22.0",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": init_waiting}},
            }
        ]
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "status": status}


def scaled_object(
    ready: str | None = "True",
    reason: str | None = "ScaledObjectReady",
    message: str | None = "ScaledObject is defined correctly and is ready for scaling",
) -> dict[str, Any]:
    """A ScaledObject as KEDA leaves it; ready=None: KEDA has not reported yet."""
    body: dict[str, Any] = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(
            "scaler", labels={**_labels("scaler"), "scaledobject.keda.sh/name": NAME}
        ),
        "spec": {
            "scaleTargetRef": {"name": NAME},
            "pollingInterval": 5,
            "cooldownPeriod": 300,
            "minReplicaCount": 0,
            "maxReplicaCount": 1,
            "triggers": [
                {
                    "type": "redis",
                    "metadata": {"address": "redis:6379", "listName": QUEUE, "listLength": "1"},
                    "authenticationRef": {"name": NAME},
                }
            ],
        },
    }
    if ready is not None:
        condition: dict[str, Any] = {"type": "Ready", "status": ready}
        if reason is not None:
            condition["reason"] = reason
        if message is not None:
            condition["message"] = message
        body["status"] = {
            "scaleTargetKind": "apps/v1.Deployment",
            "scaleTargetGVKR": {"group": "apps", "kind": "Deployment", "resource": "deployments"},
            "originalReplicaCount": 1,
            "conditions": [
                condition,
                {"type": "Active", "status": "False", "reason": "ScalerNotActive"},
                {"type": "Fallback", "status": "False", "reason": "NoFallbackFound"},
                {"type": "Paused", "status": "Unknown"},
            ],
        }
    return body


def trigger_authentication() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": _metadata("trigger-auth"),
        "spec": {
            "secretTargetRef": [{"parameter": "password", "name": "redis", "key": "password"}]
        },
    }


UNSET: Any = object()


def observe(
    *,
    deployment_: Any = UNSET,
    scaled_object_: Any = UNSET,
    trigger_authentication_: Any = UNSET,
    **overrides: Any,
) -> Observation:
    """An Observation of a healthy sleeping session, fields overridden by keyword."""
    fields: dict[str, Any] = {
        "generation": 3,
        "reconciled_generation": 3,
        "deleting": False,
        "suspend": False,
        "queue_name": QUEUE,
        "children": dict(CHILDREN),
        "deployment": deployment() if deployment_ is UNSET else deployment_,
        "scaled_object": scaled_object() if scaled_object_ is UNSET else scaled_object_,
        "trigger_authentication": (
            trigger_authentication()
            if trigger_authentication_ is UNSET
            else trigger_authentication_
        ),
        "pods": (),
        "queue_depth": 0,
        "now": NOW,
    }
    fields.update(overrides)
    return Observation(**fields)


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in status["conditions"] if c["type"] == type_]
    assert len(found) == 1, status["conditions"]
    return found[0]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def as_served(status: dict[str, Any]) -> dict[str, Any]:
    """The status as read back from the API server: plain JSON."""
    served: dict[str, Any] = json.loads(json.dumps(status))
    return served


# One observation per phase.
SCENARIOS: dict[str, Observation] = {
    Phase.TERMINATING: observe(deleting=True),
    Phase.DEGRADED: observe(reconcile_error="boom"),
    Phase.PENDING: observe(deployment_=None),
    Phase.SUSPENDED: observe(suspend=True),
    Phase.RUNNING: observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()]),
    Phase.WAKING: observe(deployment_=deployment(replicas=1)),
    Phase.SLEEPING: observe(),
}
