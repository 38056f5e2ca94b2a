"""The UserSession CRD as the real API server enforces it: schema, CEL rules, printer columns."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from support.chart import kubectl
from usersession_localstack.cluster import LocalCluster
from usersession_operator.session.model import GROUP, PLURAL, VERSION


def _session(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"userId": "alice@example.com", "workload": {"image": "example.com/w:1"}}
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "UserSession",
        "metadata": {"name": name},
        "spec": base,
    }


@pytest.fixture
def sessions(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


def _rejected(sessions: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as info:
        sessions.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert info.value.status == 422, info.value.body
    message: str = json.loads(info.value.body)["message"]
    return message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"userId": None}, "spec.userId: Required value"),
        ({"workload": {"image": ""}}, "image"),
        ({"scaling": {"idleTimeoutSeconds": 0}}, "idleTimeoutSeconds must be at least 1"),
        ({"scaling": {"pollingIntervalSeconds": -5}}, "pollingIntervalSeconds"),
        ({"redis": {"password": "hunter2"}}, "store the password in a Secret"),
        ({"redis": {"address": "redis-without-port"}}, "host:port"),
        (
            {"workload": {"image": "x", "env": [{"name": "REDIS_PASSWORD", "value": "x"}]}},
            "cannot be overridden",
        ),
        (
            {
                "workload": {
                    "image": "x",
                    "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
                }
            },
            "Duplicate value",
        ),
        ({"scaling": {"startTimeoutSeconds": 0}}, "startTimeoutSeconds must be between 1"),
        (
            {"scaling": {"warmSchedules": [{"timezone": "UTC", "start": "22:00", "end": "06:00"}]}},
            "split one that crosses midnight in two",
        ),
        (
            {"scaling": {"warmSchedules": [{"timezone": "UTC", "start": "8am", "end": "17:00"}]}},
            "start must be a time of day as HH:MM",
        ),
        (
            {
                "scaling": {
                    "warmSchedules": [
                        {"timezone": "UTC", "start": "08:00", "end": "17:00", "days": ["Monday"]}
                    ]
                }
            },
            'supported values: "Mon"',
        ),
        (
            {
                "scaling": {
                    "warmSchedules": [{"timezone": "not a zone!", "start": "08:00", "end": "09:00"}]
                }
            },
            "timezone must be an IANA name",
        ),
        ({"expireAfterIdleSeconds": 5}, "expireAfterIdleSeconds must be between 10 seconds"),
        ({"storage": {"size": "lots"}}, "storage.size must be a positive quantity"),
        ({"storage": {"size": "1Gi", "mountPath": "data"}}, "mountPath must be an absolute path"),
        # The pod fields platform teams set: typed where a typo would only show at apply.
        (
            {"workload": {"image": "x", "podSecurityContext": {"runAsUser": -1}}},
            "podSecurityContext.runAsUser: Invalid value: -1",
        ),
        (
            {"workload": {"image": "x", "securityContext": {"seccompProfile": {"type": "None"}}}},
            'supported values: "RuntimeDefault"',
        ),
        (
            {"workload": {"image": "x", "imagePullSecrets": [{"name": ""}]}},
            "imagePullSecrets[0].name",
        ),
        (
            {"workload": {"image": "x", "priorityClassName": "p" * 254}},
            "priorityClassName: Too long",
        ),
    ],
    ids=[
        "missing-userId",
        "empty-image",
        "zero-idle-timeout",
        "negative-polling",
        "password-literal",
        "address-without-port",
        "reserved-env",
        "duplicate-env",
        "zero-start-timeout",
        "warm-window-past-midnight",
        "warm-window-bad-time",
        "warm-window-bad-day",
        "warm-window-bad-zone",
        "expiry-too-short",
        "storage-size-not-a-quantity",
        "storage-relative-path",
        "negative-runAsUser",
        "unknown-seccomp-type",
        "unnamed-pull-secret",
        "long-priority-class",
    ],
)
def test_bad_sessions_are_rejected_with_a_clear_message(
    sessions: client.CustomObjectsApi, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    body = _session(f"bad-{uuid.uuid4().hex[:6]}")
    for key, value in spec.items():
        if value is None:
            body["spec"].pop(key)
        else:
            body["spec"][key] = value
    assert expected in _rejected(sessions, namespace, body)


def test_user_id_is_immutable(sessions: client.CustomObjectsApi, namespace: str) -> None:
    sessions.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _session("fixed"))
    with pytest.raises(ApiException) as info:
        sessions.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "fixed", {"spec": {"userId": "mallory@example.com"}}
        )
    assert info.value.status == 422
    assert "userId is immutable" in json.loads(info.value.body)["message"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"size": "1Gi"}, "storage.size may grow but not shrink"),
        ({"storageClassName": "other"}, "storage.storageClassName cannot be changed once set"),
        ({"accessModes": ["ReadWriteMany"]}, "storage.accessModes cannot be changed once set"),
    ],
    ids=["shrink", "class", "access-modes"],
)
def test_storage_may_grow_but_its_claim_cannot_otherwise_change(
    sessions: client.CustomObjectsApi, namespace: str, change: dict[str, Any], expected: str
) -> None:
    name = f"disk-{uuid.uuid4().hex[:6]}"
    body = _session(name)
    body["spec"]["storage"] = {"size": "2Gi", "storageClassName": "standard"}
    sessions.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    grown = {"spec": {"storage": {"size": "3Gi"}}}
    sessions.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, grown)
    with pytest.raises(ApiException) as info:
        patch = {"spec": {"storage": change}}
        sessions.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, patch)
    assert info.value.status == 422
    assert expected in json.loads(info.value.body)["message"]


def test_defaults_and_printer_columns(
    sessions: client.CustomObjectsApi, namespace: str, cluster: LocalCluster
) -> None:
    created = sessions.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _session("plain")
    )
    assert created["spec"]["scaling"] == {
        "idleTimeoutSeconds": 120,
        "pollingIntervalSeconds": 10,
        "startTimeoutSeconds": 300,
    }
    assert "expireAfterIdleSeconds" not in created["spec"], "expiry is off unless asked for"
    assert created["spec"]["suspend"] is False
    assert "redis" not in created["spec"], "Redis defaults come from the operator, not the schema"

    request = urllib.request.Request(
        f"{cluster.server}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    with urllib.request.urlopen(request, context=cluster.ssl_context(), timeout=10) as response:
        table = json.loads(response.read())
    columns = [c["name"] for c in table["columnDefinitions"]]
    for wanted in ("User", "Phase", "Queue", "Ready", "Age"):
        assert wanted in columns
    assert table["rows"][0]["cells"][columns.index("User")] == "alice@example.com"


@pytest.mark.parametrize(
    ("field", "words"),
    [
        ("spec.storage", "survives sleep"),
        ("spec.storage.deletionPolicy", "takes it over"),
        ("spec.scaling.warmSchedules", "cron triggers"),
        ("spec.scaling.startTimeoutSeconds", "StartTimeout"),
        ("spec.expireAfterIdleSeconds", "GitOps tool recreates"),
        ("status.storage", "PersistentVolumeClaim"),
    ],
)
def test_kubectl_explain_documents_each_field(
    cluster: LocalCluster, field: str, words: str
) -> None:
    explained = subprocess.run(
        [kubectl(), "--kubeconfig", str(cluster.kubeconfig), "explain", f"usersessions.{field}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert words in " ".join(explained.split()), explained
