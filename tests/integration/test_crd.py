"""The UserSession CRD as the real API server enforces it: schema, CEL rules, printer columns."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException

from usersession_localstack import LocalCluster
from usersession_operator.model import GROUP, PLURAL, VERSION


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


def test_defaults_and_printer_columns(
    sessions: client.CustomObjectsApi, namespace: str, cluster: LocalCluster
) -> None:
    created = sessions.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _session("plain")
    )
    assert created["spec"]["scaling"] == {"idleTimeoutSeconds": 120, "pollingIntervalSeconds": 10}
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
