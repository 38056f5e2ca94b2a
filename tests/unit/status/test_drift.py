"""drifted(): has someone changed a child by hand, as opposed to the API server or
another controller filling in their own fields?"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from usersession_operator.builders import (
    build_deployment,
    build_scaled_object,
    build_trigger_authentication,
)
from usersession_operator.session.model import Session
from usersession_operator.status.drift import drifted

MakeSession = Callable[..., Session]
Builder = Callable[[Session], dict[str, Any]]

MANAGED_FIELDS = [
    {
        "manager": "usersession-operator",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": "2025-03-14T11:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {}},
    }
]


def _server_metadata(body: dict[str, Any]) -> None:
    meta = body["metadata"]
    meta.update(
        uid="5a0c3f5e-2222-4333-8444-555566667777",
        resourceVersion="81234",
        generation=2,
        creationTimestamp="2025-03-14T11:00:00Z",
        managedFields=copy.deepcopy(MANAGED_FIELDS),
    )


def served_deployment(desired: dict[str, Any]) -> dict[str, Any]:
    """A Deployment as the API server returns it after applying `desired`:
    defaults filled in, empty values dropped, status and bookkeeping added."""
    live = copy.deepcopy(desired)
    _server_metadata(live)
    live["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "3"
    spec = live["spec"]
    spec.update(replicas=1, progressDeadlineSeconds=600)
    pod_spec = spec["template"]["spec"]
    pod_spec.update(
        restartPolicy="Always",
        terminationGracePeriodSeconds=30,
        dnsPolicy="ClusterFirst",
        schedulerName="default-scheduler",
    )
    pod_spec.setdefault("securityContext", {})
    for container in pod_spec["containers"]:
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("resources", {})
        container.update(
            terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File"
        )
        for env in container.get("env", []):
            # omitempty: an empty value is not returned at all.
            if env.get("value") == "":
                del env["value"]
            ref = env.get("valueFrom", {}).get("fieldRef")
            if ref is not None:
                ref.setdefault("apiVersion", "v1")
    for toleration in pod_spec.get("tolerations", []):
        if toleration.get("value") == "":
            del toleration["value"]
    live["status"] = {
        "observedGeneration": 2,
        "replicas": 1,
        "readyReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    return live


def served_scaled_object(desired: dict[str, Any]) -> dict[str, Any]:
    """A ScaledObject after KEDA has reconciled it: its own label and finalizer, a status."""
    live = copy.deepcopy(desired)
    _server_metadata(live)
    live["metadata"]["labels"]["scaledobject.keda.sh/name"] = live["metadata"]["name"]
    live["metadata"]["finalizers"] = ["finalizer.keda.sh"]
    live["status"] = {
        "scaleTargetKind": "apps/v1.Deployment",
        "originalReplicaCount": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "ScaledObjectReady"}],
    }
    return live


def served_trigger_authentication(desired: dict[str, Any]) -> dict[str, Any]:
    live = copy.deepcopy(desired)
    _server_metadata(live)
    return live


def _container(body: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = body["spec"]["template"]["spec"]["containers"][0]
    return container


@pytest.fixture
def desired_deployment(make_session: MakeSession) -> dict[str, Any]:
    return build_deployment(
        make_session(
            workload={
                "image": "registry.example.com/session-worker:0.1.0",
                "env": [{"name": "MODEL", "value": "small"}],
                "resources": {"limits": {"memory": "512Mi"}},
            }
        )
    )


# -- no drift ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "serve"),
    [
        (build_deployment, served_deployment),
        (build_scaled_object, served_scaled_object),
        (build_trigger_authentication, served_trigger_authentication),
    ],
    ids=["Deployment", "ScaledObject", "TriggerAuthentication"],
)
def test_what_the_server_and_other_controllers_add_is_not_drift(
    make_session: MakeSession,
    build: Builder,
    serve: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    desired = build(make_session())
    live = serve(desired)
    assert live != desired  # the server really did add things
    assert not drifted(desired, live)


def test_defaults_inside_lists_are_not_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    _container(live)["ports"] = []  # an extra key, even an empty one, is not ours
    assert "terminationMessagePath" in _container(live)
    assert not drifted(desired_deployment, live)


def test_labels_from_other_controllers_are_not_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    live["metadata"]["labels"]["team.example.com/cost-center"] = "42"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    live["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/restartedAt": "2025-03-14T11:30:00Z"
    }
    assert not drifted(desired_deployment, live)


def test_suspended_scaled_object_with_its_annotation_is_not_drift(
    make_session: MakeSession,
) -> None:
    desired = build_scaled_object(make_session(suspend=True))
    assert desired["metadata"]["annotations"]
    assert not drifted(desired, served_scaled_object(desired))


def test_empty_values_the_server_omits_are_not_drift(make_session: MakeSession) -> None:
    # Built-in kinds drop empty strings (omitempty): `value: ""` is a common way
    # to write an empty env var or an Exists toleration.
    desired = build_deployment(
        make_session(
            workload={
                "image": "img",
                "env": [
                    {"name": "EMPTY", "value": ""},
                    {
                        "name": "POD_IP",
                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                    },
                ],
                "tolerations": [
                    {"key": "gpu", "operator": "Exists", "value": "", "effect": "NoSchedule"}
                ],
            }
        )
    )
    live = served_deployment(desired)
    assert {"name": "EMPTY"} in _container(live)["env"]
    assert not drifted(desired, live)


def test_empty_desired_maps_match_absent_ones() -> None:
    desired = {"metadata": {"labels": {"a": "b"}, "annotations": {}}, "spec": {"x": {}, "y": []}}
    live = {"metadata": {"labels": {"a": "b"}}, "spec": {}}
    assert not drifted(desired, live)


# -- drift ----------------------------------------------------------------------


def test_edited_image_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    _container(live)["image"] = "registry.example.com/session-worker:evil"
    assert drifted(desired_deployment, live)


def test_removed_env_var_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    _container(live)["env"] = [e for e in _container(live)["env"] if e["name"] != "MODEL"]
    assert drifted(desired_deployment, live)


def test_changed_env_value_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    (model,) = [e for e in _container(live)["env"] if e["name"] == "MODEL"]
    model["value"] = "large"
    assert drifted(desired_deployment, live)


def test_emptied_env_value_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    (model,) = [e for e in _container(live)["env"] if e["name"] == "MODEL"]
    del model["value"]  # what the server returns after someone set it to ""
    assert drifted(desired_deployment, live)


def test_reordered_env_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    _container(live)["env"].reverse()
    assert drifted(desired_deployment, live)


def test_password_reference_replaced_by_a_literal_is_drift(
    desired_deployment: dict[str, Any],
) -> None:
    live = served_deployment(desired_deployment)
    (password,) = [e for e in _container(live)["env"] if e["name"] == "REDIS_PASSWORD"]
    del password["valueFrom"]
    password["value"] = "hunter2"
    assert drifted(desired_deployment, live)


@pytest.mark.parametrize(
    "label",
    ["app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/name"],
)
def test_removed_label_is_drift(desired_deployment: dict[str, Any], label: str) -> None:
    live = served_deployment(desired_deployment)
    del live["metadata"]["labels"][label]
    assert drifted(desired_deployment, live)


def test_changed_label_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    live["metadata"]["labels"]["app.kubernetes.io/component"] = "something-else"
    assert drifted(desired_deployment, live)


def test_all_labels_removed_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    del live["metadata"]["labels"]
    assert drifted(desired_deployment, live)


def test_removed_pod_template_label_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    del live["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
    assert drifted(desired_deployment, live)


@pytest.mark.parametrize("emptied", [True, False], ids=["empty-list", "key-removed"])
def test_removed_owner_reference_is_drift(make_session: MakeSession, emptied: bool) -> None:
    desired = build_trigger_authentication(make_session())
    live = served_trigger_authentication(desired)
    if emptied:
        live["metadata"]["ownerReferences"] = []
    else:
        del live["metadata"]["ownerReferences"]
    assert drifted(desired, live)


def test_owner_reference_no_longer_controller_is_drift(make_session: MakeSession) -> None:
    desired = build_scaled_object(make_session())
    live = served_scaled_object(desired)
    live["metadata"]["ownerReferences"][0]["controller"] = False
    assert drifted(desired, live)


def test_extra_container_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    live["spec"]["template"]["spec"]["containers"].append({"name": "debug", "image": "busybox"})
    assert drifted(desired_deployment, live)


def test_extra_trigger_is_drift(make_session: MakeSession) -> None:
    desired = build_scaled_object(make_session())
    live = served_scaled_object(desired)
    live["spec"]["triggers"].append({"type": "cpu", "metadata": {"value": "50"}})
    assert drifted(desired, live)


def test_removed_secret_target_is_drift(make_session: MakeSession) -> None:
    desired = build_trigger_authentication(make_session())
    live = served_trigger_authentication(desired)
    live["spec"]["secretTargetRef"] = []
    assert drifted(desired, live)


def test_missing_spec_field_is_drift(make_session: MakeSession) -> None:
    desired = build_scaled_object(make_session())
    live = served_scaled_object(desired)
    del live["spec"]["cooldownPeriod"]
    assert drifted(desired, live)


def test_changed_number_is_drift(make_session: MakeSession) -> None:
    desired = build_scaled_object(make_session())
    live = served_scaled_object(desired)
    live["spec"]["maxReplicaCount"] = 5
    assert drifted(desired, live)


def test_changed_trigger_metadata_is_drift(make_session: MakeSession) -> None:
    desired = build_scaled_object(make_session())
    live = served_scaled_object(desired)
    live["spec"]["triggers"][0]["metadata"]["listName"] = "someone-elses-queue"
    assert drifted(desired, live)


def test_removed_pause_annotation_is_drift(make_session: MakeSession) -> None:
    desired = build_scaled_object(make_session(suspend=True))
    live = served_scaled_object(desired)
    del live["metadata"]["annotations"]
    assert drifted(desired, live)


def test_replaced_object_is_drift(desired_deployment: dict[str, Any]) -> None:
    live = served_deployment(desired_deployment)
    live["spec"]["template"]["spec"]["containers"][0] = "not a container"
    assert drifted(desired_deployment, live)
    live = served_deployment(desired_deployment)
    del live["spec"]
    assert drifted(desired_deployment, live)
