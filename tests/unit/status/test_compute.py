"""compute_status and status_patch: a UserSession's status from what the operator observed."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from usersession_operator.status.compute import (
    ACTIVITY_RESOLUTION,
    Observation,
    Phase,
    compute_status,
    status_patch,
    wake_start,
)
from usersession_operator.status.conditions import REDIS_UNREACHABLE, SCALER_FAILED, new_warning

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


_UNSET: Any = object()


def observe(
    *,
    deployment_: Any = _UNSET,
    scaled_object_: Any = _UNSET,
    trigger_authentication_: Any = _UNSET,
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
        "deployment": deployment() if deployment_ is _UNSET else deployment_,
        "scaled_object": scaled_object() if scaled_object_ is _UNSET else scaled_object_,
        "trigger_authentication": (
            trigger_authentication()
            if trigger_authentication_ is _UNSET
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


# -- phases -------------------------------------------------------------------


def test_healthy_idle_session_is_sleeping() -> None:
    status = compute_status(observe(), {})
    assert status["phase"] == Phase.SLEEPING
    assert status["replicas"] == 0
    assert status["readyReplicas"] == 0
    assert status["queueName"] == QUEUE
    assert status["queueDepth"] == 0
    assert status["children"] == CHILDREN
    assert "pod" not in status
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.SLEEPING)
    assert "scaled to zero" in ready["message"]


def test_deleting_session_is_terminating_whatever_else_is_wrong() -> None:
    obs = observe(
        deleting=True,
        reconcile_error="apply failed",
        deployment_=None,
        pods=[pod(waiting="CrashLoopBackOff", ready=False)],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.TERMINATING
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", Phase.TERMINATING)


def test_reconcile_error_is_degraded_with_the_error_as_message() -> None:
    error = 'ScaledObject.keda.sh "alice" is invalid: spec.cooldownPeriod: must be >= 0'
    status = compute_status(observe(reconcile_error=error, deployment_=None), {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ReconcileFailed",
        error,
    )


@pytest.mark.parametrize(
    ("missing", "listed"),
    [
        ({"deployment_"}, "Deployment"),
        ({"scaled_object_"}, "ScaledObject"),
        ({"trigger_authentication_"}, "TriggerAuthentication"),
        ({"deployment_", "trigger_authentication_"}, "Deployment, TriggerAuthentication"),
        (
            {"deployment_", "scaled_object_", "trigger_authentication_"},
            "Deployment, ScaledObject, TriggerAuthentication",
        ),
    ],
)
def test_missing_children_are_pending_and_named(missing: set[str], listed: str) -> None:
    status = compute_status(observe(**dict.fromkeys(missing)), {})
    assert status["phase"] == Phase.PENDING
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildrenMissing")
    assert ready["message"] == f"waiting for {listed} to exist"


def test_pending_without_deployment_reports_zero_replicas() -> None:
    status = compute_status(observe(deployment_=None), {})
    assert (status["replicas"], status["readyReplicas"]) == (0, 0)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("CrashLoopBackOff", "back-off 5m0s restarting failed container=session"),
        ("ImagePullBackOff", 'Back-off pulling image "registry.example.com/nope:1"'),
        ("ErrImagePull", "failed to pull and unpack image"),
        ("CreateContainerConfigError", 'secret "redis" not found'),
        ("InvalidImageName", 'Failed to apply default image tag "Bad Image"'),
    ],
)
def test_stuck_container_is_degraded_with_its_reason(reason: str, message: str) -> None:
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[
            pod(
                phase="Pending" if "Image" in reason else "Running",
                ready=False,
                waiting=reason,
                waiting_message=message,
            )
        ],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", reason, message)


def test_stuck_container_without_message_uses_the_reason() -> None:
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(ready=False, waiting="CrashLoopBackOff")],
    )
    ready = condition(compute_status(obs, {}), "Ready")
    assert (ready["reason"], ready["message"]) == ("CrashLoopBackOff", "CrashLoopBackOff")


def test_stuck_init_container_is_degraded() -> None:
    # An injected init container (a service mesh, a secrets agent) that cannot
    # start keeps the pod Pending for ever: that needs attention too.
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False, init_waiting="ImagePullBackOff")],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    assert condition(status, "Ready")["reason"] == "ImagePullBackOff"


def test_container_that_is_merely_starting_is_waking_not_degraded() -> None:
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False, waiting="ContainerCreating")],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"] == {"name": f"{NAME}-5d8f7c9b6d-x7k2p", "phase": "Pending", "ready": False}


def test_failed_pod_is_degraded_with_its_message() -> None:
    evicted = pod(
        phase="Failed",
        ready=False,
        reason="Evicted",
        message="The node was low on resource: memory.",
    )
    status = compute_status(observe(deployment_=deployment(replicas=1), pods=[evicted]), {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["reason"], ready["message"]) == (
        "PodFailed",
        "The node was low on resource: memory.",
    )
    assert status["pod"]["phase"] == "Failed"


def test_failed_pod_without_message_names_the_pod() -> None:
    failed = pod("alice-5d8f7c9b6d-zzzzz", phase="Failed", ready=False)
    ready = condition(
        compute_status(observe(deployment_=deployment(replicas=1), pods=[failed]), {}), "Ready"
    )
    assert ready["message"] == "pod alice-5d8f7c9b6d-zzzzz failed"


def test_failed_pod_left_behind_at_zero_replicas_does_not_degrade_a_sleeping_session() -> None:
    # ReplicaSets never delete Failed (e.g. evicted) pods; they linger until pod GC.
    evicted = pod(phase="Failed", ready=False, reason="Evicted", message="low on memory")
    status = compute_status(observe(deployment_=deployment(replicas=0), pods=[evicted]), {})
    assert status["phase"] == Phase.SLEEPING
    assert condition(status, "Ready")["status"] == "True"


@pytest.mark.parametrize("order", [1, -1])
def test_replacement_speaks_for_the_session_not_the_evicted_pod(order: int) -> None:
    # Eviction and replacement often share a creationTimestamp second.
    evicted = pod("alice-old", phase="Failed", ready=False, created="2025-03-14T11:59:00Z")
    replacement = pod("alice-new", phase="Pending", ready=False, created="2025-03-14T11:59:00Z")
    obs = observe(deployment_=deployment(replicas=1), pods=[evicted, replacement][::order])
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"]["name"] == "alice-new"


def test_progress_deadline_exceeded_is_degraded() -> None:
    obs = observe(deployment_=deployment(replicas=1, progress_deadline_exceeded=True))
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_suspended_session() -> None:
    status = compute_status(observe(suspend=True), {})
    assert status["phase"] == Phase.SUSPENDED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", Phase.SUSPENDED)
    assert "spec.suspend" in ready["message"]


def test_suspended_but_crashing_is_degraded() -> None:
    obs = observe(
        suspend=True,
        deployment_=deployment(replicas=1),
        pods=[pod(ready=False, waiting="CrashLoopBackOff")],
    )
    assert compute_status(obs, {})["phase"] == Phase.DEGRADED


def test_ready_pod_is_running() -> None:
    running = pod("alice-5d8f7c9b6d-x7k2p")
    status = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[running], queue_depth=2), {}
    )
    assert status["phase"] == Phase.RUNNING
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert status["pod"] == {"name": "alice-5d8f7c9b6d-x7k2p", "phase": "Running", "ready": True}
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.RUNNING)
    assert "alice-5d8f7c9b6d-x7k2p" in ready["message"]


def test_scaled_up_without_a_pod_is_waking() -> None:
    status = compute_status(observe(deployment_=deployment(replicas=1), queue_depth=1), {})
    assert status["phase"] == Phase.WAKING
    assert status["replicas"] == 1
    assert "pod" not in status
    assert condition(status, "Ready")["status"] == "False"


def test_running_pod_that_is_not_ready_yet_is_waking() -> None:
    obs = observe(deployment_=deployment(replicas=1), pods=[pod(ready=False)])
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"]["ready"] is False


def test_terminating_pod_is_ignored() -> None:
    leaving = pod(deleting=True)  # still Ready while it shuts down
    status = compute_status(observe(deployment_=deployment(replicas=0), pods=[leaving]), {})
    assert status["phase"] == Phase.SLEEPING
    assert "pod" not in status


def test_terminating_ready_pod_does_not_hide_its_successor() -> None:
    leaving = pod("alice-old", deleting=True, created="2025-03-14T11:00:00Z")
    starting = pod("alice-new", phase="Pending", ready=False, created="2025-03-14T11:59:00Z")
    obs = observe(deployment_=deployment(replicas=1), pods=[leaving, starting])
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"]["name"] == "alice-new"


def test_ready_pod_is_preferred_over_a_newer_unready_one() -> None:
    old_ready = pod("alice-a", created="2025-03-14T11:00:00Z")
    new_unready = pod("alice-b", ready=False, created="2025-03-14T11:59:00Z")
    status = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[new_unready, old_ready]), {}
    )
    assert status["phase"] == Phase.RUNNING
    assert status["pod"]["name"] == "alice-a"


# -- waking: Ready promises that the next message wakes the session ------------------

# Shaped like KEDA 2.21's message when it cannot build the redis scaler (wrong password).
KEDA_WRONGPASS = (
    "failed to ensure HPA is correctly created for ScaledObject: connection to redis "
    "failed: WRONGPASS invalid username-password pair or user is disabled."
)


def failing_scaler(message: str | None = KEDA_WRONGPASS) -> dict[str, Any]:
    return scaled_object("False", "ScaledObjectCheckFailed", message)


def test_sleeping_session_whose_scaler_fails_is_degraded_not_ready() -> None:
    status = compute_status(observe(scaled_object_=failing_scaler()), {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", SCALER_FAILED)
    assert ready["message"] == f"KEDA cannot scale the session: {KEDA_WRONGPASS}"
    scaler = condition(status, "ScalerReady")
    assert (scaler["status"], scaler["reason"], scaler["message"]) == (
        "False",
        "ScaledObjectCheckFailed",
        KEDA_WRONGPASS,
    )


def test_running_session_whose_scaler_fails_is_degraded() -> None:
    # It will not be scaled down when idle, nor woken again once it is.
    obs = observe(
        deployment_=deployment(replicas=1, ready=1),
        pods=[pod()],
        scaled_object_=scaled_object(
            "False", "TriggerError", "Triggers defined in ScaledObject are not working correctly"
        ),
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    assert status["pod"]["ready"] is True
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", SCALER_FAILED)
    assert "Triggers defined in ScaledObject are not working correctly" in ready["message"]


def test_failing_scaler_without_a_message_still_says_why() -> None:
    obs = observe(scaled_object_=scaled_object("False", "ErrorScalingTarget", message=None))
    ready = condition(compute_status(obs, {}), "Ready")
    assert ready["reason"] == SCALER_FAILED
    assert ready["message"] == "KEDA cannot scale the session: ErrorScalingTarget"


@pytest.mark.parametrize("keda", ["Unknown", None], ids=["unknown", "not-reported"])
def test_scaler_not_known_to_fail_does_not_degrade(keda: str | None) -> None:
    # Unknown: KEDA has not checked yet, or only some triggers fail while others are active.
    obs = observe(scaled_object_=scaled_object(keda, "PartialTriggerError", "some triggers fail"))
    status = compute_status(obs, {})
    assert status["phase"] == Phase.SLEEPING


def test_session_recovers_when_keda_reports_ready_again() -> None:
    later = NOW + dt.timedelta(minutes=4)
    failed = as_served(compute_status(observe(scaled_object_=failing_scaler()), {}))
    status = compute_status(observe(now=later), failed)
    assert status["phase"] == Phase.SLEEPING
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.SLEEPING)
    assert ready["lastTransitionTime"] == ts(later)
    assert condition(status, "ScalerReady")["status"] == "True"


def test_operator_unable_to_read_the_queue_is_degraded() -> None:
    error = "AuthenticationError: invalid username-password pair or user is disabled."
    status = compute_status(observe(queue_depth=None, redis_error=error), {"queueDepth": 2})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", REDIS_UNREACHABLE)
    assert ready["message"] == f"cannot read the queue: {error}"
    assert condition(status, "RedisReachable")["status"] == "False"
    assert status["queueDepth"] == 2


def test_session_recovers_when_the_queue_is_readable_again() -> None:
    failed = as_served(compute_status(observe(queue_depth=None, redis_error="timeout"), {}))
    status = compute_status(observe(queue_depth=0), failed)
    assert status["phase"] == Phase.SLEEPING
    assert condition(status, "Ready")["status"] == "True"


def test_failing_scaler_is_named_before_the_operators_own_redis_error() -> None:
    # KEDA is what wakes the session; its message is the one that explains why it will not.
    obs = observe(scaled_object_=failing_scaler(), queue_depth=None, redis_error="timeout")
    assert condition(compute_status(obs, {}), "Ready")["reason"] == SCALER_FAILED


@pytest.mark.parametrize(
    ("overrides", "phase", "reason"),
    [
        ({"suspend": True}, Phase.SUSPENDED, Phase.SUSPENDED),
        ({"deleting": True}, Phase.TERMINATING, Phase.TERMINATING),
        ({"reconcile_error": "apply failed"}, Phase.DEGRADED, "ReconcileFailed"),
        ({"deployment_": None}, Phase.PENDING, "ChildrenMissing"),
        (
            {
                "deployment_": deployment(replicas=1),
                "pods": [pod(ready=False, waiting="CrashLoopBackOff")],
            },
            Phase.DEGRADED,
            "CrashLoopBackOff",
        ),
        (
            {"deployment_": deployment(replicas=1, progress_deadline_exceeded=True)},
            Phase.DEGRADED,
            "ProgressDeadlineExceeded",
        ),
    ],
    ids=["suspended", "terminating", "reconcile-error", "children-missing", "stuck", "deadline"],
)
@pytest.mark.parametrize("failure", ["scaler", "redis"])
def test_other_states_take_precedence_over_scaler_and_redis_failures(
    overrides: dict[str, Any], phase: str, reason: str, failure: str
) -> None:
    if failure == "scaler":
        overrides = {"scaled_object_": failing_scaler(), **overrides}
    else:
        overrides = {"queue_depth": None, "redis_error": "timeout", **overrides}
    status = compute_status(observe(**overrides), {})
    assert status["phase"] == phase
    assert condition(status, "Ready")["reason"] == reason


def test_a_session_newly_unable_to_wake_deserves_one_warning() -> None:
    sleeping = as_served(compute_status(observe(), {}))
    failed = compute_status(observe(scaled_object_=failing_scaler()), sleeping)
    assert new_warning(sleeping, failed) == (
        SCALER_FAILED,
        f"KEDA cannot scale the session: {KEDA_WRONGPASS}",
    )
    # The next polls find it just as broken: no more events.
    later = compute_status(
        observe(scaled_object_=failing_scaler(), now=NOW + ACTIVITY_RESOLUTION), failed
    )
    assert new_warning(as_served(failed), later) is None


def test_a_session_created_broken_deserves_a_warning() -> None:
    failed = compute_status(observe(queue_depth=None, redis_error="timeout"), {})
    assert new_warning({}, failed) == (REDIS_UNREACHABLE, "cannot read the queue: timeout")


def test_a_new_reason_not_to_wake_deserves_a_new_warning() -> None:
    redis_down = as_served(compute_status(observe(queue_depth=None, redis_error="timeout"), {}))
    failed = compute_status(observe(scaled_object_=failing_scaler()), redis_down)
    warning = new_warning(redis_down, failed)
    assert warning is not None
    assert warning[0] == SCALER_FAILED


@pytest.mark.parametrize(
    "after",
    [
        observe(),
        observe(reconcile_error="boom"),
        observe(suspend=True, scaled_object_=failing_scaler()),
    ],
    ids=["healthy", "other-degradation", "suspended"],
)
def test_other_statuses_deserve_no_warning_from_here(after: Observation) -> None:
    # Reconcile failures already reach kopf, which posts its own events for them.
    assert new_warning({}, compute_status(after, {})) is None


def test_recovery_deserves_no_warning() -> None:
    failed = as_served(compute_status(observe(scaled_object_=failing_scaler()), {}))
    assert new_warning(failed, compute_status(observe(), failed)) is None


_SCENARIOS: dict[str, Observation] = {
    Phase.TERMINATING: observe(deleting=True),
    Phase.DEGRADED: observe(reconcile_error="boom"),
    Phase.PENDING: observe(deployment_=None),
    Phase.SUSPENDED: observe(suspend=True),
    Phase.RUNNING: observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()]),
    Phase.WAKING: observe(deployment_=deployment(replicas=1)),
    Phase.SLEEPING: observe(),
}


@pytest.mark.parametrize("phase", list(_SCENARIOS))
def test_ready_condition_is_true_only_when_running_or_sleeping(phase: str) -> None:
    status = compute_status(_SCENARIOS[phase], {})
    assert status["phase"] == phase
    ready = condition(status, "Ready")
    if phase in (Phase.RUNNING, Phase.SLEEPING):
        assert (ready["status"], ready["reason"]) == ("True", phase)
    else:
        assert ready["status"] == "False"
    assert ready["message"]


# -- conditions over time -----------------------------------------------------


def test_conditions_are_stamped_with_now_the_first_time() -> None:
    status = compute_status(observe(), {})
    assert [c["type"] for c in status["conditions"]] == ["Ready", "RedisReachable", "ScalerReady"]
    for c in status["conditions"]:
        assert c["lastTransitionTime"] == "2025-03-14T12:00:00Z"
        assert c["observedGeneration"] == 3


def test_transition_time_is_kept_while_status_holds_and_renewed_when_it_flips() -> None:
    t1, t2, t3 = (NOW + dt.timedelta(minutes=m) for m in (5, 10, 15))
    sleeping = compute_status(observe(), {})

    # Sleeping -> Running: Ready stays True, so only reason and message move.
    running = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()], now=t1), sleeping
    )
    ready = condition(running, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.RUNNING)
    assert ready["lastTransitionTime"] == ts(NOW)

    # Running -> Waking (the pod went unready): Ready flips to False.
    waking = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[pod(ready=False)], now=t2), running
    )
    assert condition(waking, "Ready")["status"] == "False"
    assert condition(waking, "Ready")["lastTransitionTime"] == ts(t2)
    # The other conditions did not change.
    assert condition(waking, "RedisReachable")["lastTransitionTime"] == ts(NOW)
    assert condition(waking, "ScalerReady")["lastTransitionTime"] == ts(NOW)

    # ...and back to True.
    again = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()], now=t3), waking
    )
    assert condition(again, "Ready")["lastTransitionTime"] == ts(t3)


def test_condition_without_transition_time_gets_one() -> None:
    previous = {"conditions": [{"type": "Ready", "status": "True", "reason": "Sleeping"}]}
    status = compute_status(observe(), previous)
    assert condition(status, "Ready")["lastTransitionTime"] == ts(NOW)


def test_observed_generation_comes_from_the_reconciled_generation() -> None:
    previous = compute_status(observe(reconciled_generation=2), {})
    status = compute_status(observe(generation=4, reconciled_generation=4), previous)
    assert status["observedGeneration"] == 4
    assert {c["observedGeneration"] for c in status["conditions"]} == {4}


def test_observed_generation_is_kept_until_a_reconcile_succeeds() -> None:
    previous = compute_status(observe(reconciled_generation=2), {})
    status = compute_status(observe(generation=3, reconciled_generation=None), previous)
    assert status["observedGeneration"] == 2
    assert {c["observedGeneration"] for c in status["conditions"]} == {2}


def test_observed_generation_absent_before_any_reconcile() -> None:
    status = compute_status(observe(reconciled_generation=None), {})
    assert "observedGeneration" not in status
    assert all("observedGeneration" not in c for c in status["conditions"])


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


# -- ScalerReady ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ready", "reason", "message"),
    [
        ("True", "ScaledObjectReady", "ScaledObject is defined correctly and is ready"),
        ("False", "ScaledObjectCheckFailed", "ScaledObject doesn't have correct triggers"),
        ("Unknown", "ScaledObjectUnknown", "not checked yet"),
    ],
)
def test_scaler_ready_mirrors_keda(ready: str, reason: str, message: str) -> None:
    obs = observe(scaled_object_=scaled_object(ready, reason, message))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"], scaler["message"]) == (ready, reason, message)


@pytest.mark.parametrize(("ready", "fallback"), [("True", "KedaReady"), ("False", "KedaNotReady")])
def test_scaler_reason_fallback_matches_the_status(ready: str, fallback: str) -> None:
    obs = observe(scaled_object_=scaled_object(ready, reason=None, message=None))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"], scaler["message"]) == (ready, fallback, "")


def test_scaler_freshly_initialised_by_keda_is_unknown_not_ready() -> None:
    # KEDA initialises its conditions as Unknown with neither reason nor message.
    obs = observe(scaled_object_=scaled_object("Unknown", reason=None, message=None))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert scaler["status"] == "Unknown"
    # The same words as before KEDA wrote any status: no second status write for it.
    assert scaler["reason"] == "NoScalerStatus"


def test_scaler_without_status_is_unknown() -> None:
    obs = observe(scaled_object_=scaled_object(ready=None))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("Unknown", "NoScalerStatus")


def test_scaler_with_only_other_conditions_is_unknown() -> None:
    body = scaled_object()
    body["status"]["conditions"] = [c for c in body["status"]["conditions"] if c["type"] != "Ready"]
    scaler = condition(compute_status(observe(scaled_object_=body), {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("Unknown", "NoScalerStatus")


def test_scaler_missing_is_unknown() -> None:
    scaler = condition(compute_status(observe(scaled_object_=None), {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("Unknown", "NoScalerStatus")


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


# -- status_patch ------------------------------------------------------------------


def test_no_patch_for_equal_status() -> None:
    status = compute_status(observe(), {})
    assert status_patch(status, copy.deepcopy(status)) is None
    assert status_patch({}, {}) is None


def test_patch_holds_only_changed_keys() -> None:
    previous = compute_status(observe(), {})
    desired = copy.deepcopy(previous)
    desired["queueDepth"] = 9
    desired["phase"] = Phase.WAKING
    assert status_patch(previous, desired) == {"queueDepth": 9, "phase": Phase.WAKING}


def test_patch_removes_keys_with_none() -> None:
    previous = {"phase": Phase.RUNNING, "pod": {"name": "p", "phase": "Running", "ready": True}}
    assert status_patch(previous, {"phase": Phase.SLEEPING}) == {
        "phase": Phase.SLEEPING,
        "pod": None,
    }


def test_patch_adds_new_keys() -> None:
    assert status_patch({"phase": Phase.SLEEPING}, {"phase": Phase.SLEEPING, "queueDepth": 0}) == {
        "queueDepth": 0
    }


def test_patch_replaces_lists_whole() -> None:
    previous = {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "U"}]}
    desired = {"conditions": [{"type": "Ready", "status": "False"}]}
    assert status_patch(previous, desired) == desired


def test_patch_removes_keys_inside_changed_objects() -> None:
    # A merge patch merges objects, so a key dropped inside one must be nulled.
    previous = {"children": {"deployment": "a", "scaledObject": "a", "legacyService": "a"}}
    desired = {"children": {"deployment": "b", "scaledObject": "b"}}
    patch = status_patch(previous, desired)
    assert patch is not None
    assert merge_patch(previous, patch) == desired


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (_SCENARIOS[Phase.SLEEPING], _SCENARIOS[Phase.RUNNING]),
        (_SCENARIOS[Phase.RUNNING], _SCENARIOS[Phase.SLEEPING]),
        (_SCENARIOS[Phase.RUNNING], _SCENARIOS[Phase.PENDING]),
        (_SCENARIOS[Phase.WAKING], _SCENARIOS[Phase.TERMINATING]),
        (_SCENARIOS[Phase.SUSPENDED], _SCENARIOS[Phase.DEGRADED]),
    ],
)
def test_applying_the_patch_yields_the_desired_status(
    before: Observation, after: Observation
) -> None:
    previous = as_served(compute_status(before, {}))
    desired = compute_status(after, previous)
    patch = status_patch(previous, desired)
    assert patch is not None
    assert merge_patch(previous, patch) == desired


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


# -- start timeout: a woken session that does not come up says why ------------------


def test_a_pod_still_starting_within_the_start_timeout_is_waking() -> None:
    starting = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False)],  # created 120 s ago
        start_timeout_seconds=300,
    )
    assert compute_status(starting, {})["phase"] == "Waking"


def test_an_unschedulable_pod_past_the_start_timeout_is_degraded_with_the_schedulers_words() -> (
    None
):
    stuck = pod(phase="Pending", ready=False)
    stuck["status"]["conditions"][0] = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
    }
    status = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[stuck], start_timeout_seconds=60), {}
    )
    ready = condition(status, "Ready")
    assert (status["phase"], ready["status"], ready["reason"]) == (
        "Degraded",
        "False",
        "StartTimeout",
    )
    assert "not ready within 60s" in ready["message"]
    assert "unbound immediate PersistentVolumeClaims" in ready["message"]
    assert new_warning({}, status) == ("StartTimeout", ready["message"])
    # It stays so without a new message each poll (a write each poll), and with no new event.
    later = compute_status(
        observe(
            deployment_=deployment(replicas=1),
            pods=[stuck],
            start_timeout_seconds=60,
            now=NOW + dt.timedelta(minutes=5),
        ),
        status,
    )
    assert status_patch(status, later) is None
    assert new_warning(status, later) is None


def test_a_pod_failing_its_readiness_probe_past_the_start_timeout_says_so() -> None:
    unready = pod(ready=False)  # running, not ready
    status = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[unready], start_timeout_seconds=60), {}
    )
    assert "running but not ready" in condition(status, "Ready")["message"]


def test_no_pod_long_after_the_wake_names_the_replicasets_failure() -> None:
    failing = deployment(replicas=1)
    failing["status"]["conditions"].append(
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'pods "alice-x" is forbidden: exceeded quota: pods',
        }
    )
    status = compute_status(
        observe(
            deployment_=failing,
            wake_started=NOW - dt.timedelta(seconds=400),
            start_timeout_seconds=300,
        ),
        {},
    )
    ready = condition(status, "Ready")
    assert ready["reason"] == "StartTimeout"
    assert "exceeded quota" in ready["message"]
    # Without a wake start or a pod there is no clock: Waking, not a guess.
    assert compute_status(observe(deployment_=deployment(replicas=1)), {})["phase"] == "Waking"


def test_a_timed_out_session_recovers_by_itself_when_its_pod_is_ready() -> None:
    late = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(ready=False)],
        start_timeout_seconds=60,
    )
    degraded = compute_status(late, {})
    assert degraded["phase"] == "Degraded"
    ready = observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()])
    assert compute_status(ready, degraded)["phase"] == "Running"


def test_the_end_of_activity_is_stamped_so_idle_time_counts_from_it() -> None:
    busy_earlier = {
        "queueDepth": 0,
        "processingDepth": 1,
        "lastActivityTime": "2025-03-14T11:59:30Z",
    }
    done = compute_status(observe(queue_depth=0, processing_depth=0), busy_earlier)
    assert done["lastActivityTime"] == ts(NOW)
    # Idle before and after: nothing new to say.
    idle = {"queueDepth": 0, "processingDepth": 0, "lastActivityTime": "2025-03-14T11:00:00Z"}
    still = compute_status(observe(queue_depth=0, processing_depth=0), idle)
    assert still["lastActivityTime"] == "2025-03-14T11:00:00Z"


# -- storage: the session's claim --------------------------------------------------


def _claim(phase: str | None, capacity: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if capacity:
        status["capacity"] = {"storage": capacity}
    return {"metadata": {"name": NAME, "namespace": NAMESPACE}, "status": status}


def test_a_bound_claim_is_reported_and_a_missing_one_keeps_the_session_pending() -> None:
    bound = compute_status(observe(claim_wanted=True, claim=_claim("Bound", "5Gi")), {})
    assert bound["phase"] == "Sleeping"
    assert bound["storage"] == {"claimName": NAME, "phase": "Bound", "capacity": "5Gi"}
    missing = compute_status(observe(claim_wanted=True, claim=None), {})
    assert (missing["phase"], condition(missing, "Ready")["reason"]) == (
        "Pending",
        "ChildrenMissing",
    )
    # A claim left behind by an earlier session, when this one wants none: not ours to report.
    assert "storage" not in compute_status(observe(claim=_claim("Bound")), {})


def test_a_claim_that_lost_its_volume_is_degraded() -> None:
    status = compute_status(observe(claim_wanted=True, claim=_claim("Lost")), {})
    assert (status["phase"], condition(status, "Ready")["reason"]) == ("Degraded", "StorageLost")


def test_a_pending_claim_is_fine_asleep_but_names_the_cause_when_a_wake_times_out() -> None:
    asleep = compute_status(observe(claim_wanted=True, claim=_claim("Pending")), {})
    assert asleep["phase"] == "Sleeping"  # WaitForFirstConsumer classes bind on first use
    stuck = pod(phase="Pending", ready=False)
    timed_out = compute_status(
        observe(
            claim_wanted=True,
            claim=_claim("Pending"),
            deployment_=deployment(replicas=1),
            pods=[stuck],
            start_timeout_seconds=60,
        ),
        {},
    )
    ready = condition(timed_out, "Ready")
    assert (timed_out["phase"], ready["reason"]) == ("Degraded", "StorageNotBound")
    assert ready["message"].startswith(f"claim {NAME} is not bound")


def test_a_pod_that_was_ready_gets_the_whole_start_timeout_from_when_it_stopped() -> None:
    was_ready = pod(ready=False, created="2025-03-14T10:00:00Z")  # two hours old
    for cond in was_ready["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["lastTransitionTime"] = "2025-03-14T11:59:00Z"  # unready for a minute
    status = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[was_ready], start_timeout_seconds=300),
        {},
    )
    assert status["phase"] == "Waking"
