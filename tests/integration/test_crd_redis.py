"""spec.redis.usernameSecretRef and spec.redis.tls as the real API server enforces them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client

from usersession_operator.session.model import GROUP, PLURAL, VERSION

from .test_crd import _rejected, _session


@pytest.fixture
def sessions(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.mark.parametrize(
    ("redis", "expected"),
    [
        ({"username": "app"}, "store the username in a Secret"),
        ({"tls": {"ca": "-----BEGIN CERTIFICATE-----"}}, "caSecretRef or caConfigMapRef"),
        ({"tls": {"key": "-----BEGIN PRIVATE KEY-----"}}, "clientCertSecretRef"),
        (
            {"tls": {"caSecretRef": {"name": "a"}, "caConfigMapRef": {"name": "b"}}},
            "set caSecretRef or caConfigMapRef, not both",
        ),
        ({"tls": {"enabled": False, "serverName": "r.example"}}, "tls.enabled is false"),
        ({"tls": {"serverName": "not a name"}}, "serverName must be a DNS name"),
        ({"usernameSecretRef": {"key": "u"}}, "usernameSecretRef.name: Required value"),
        ({"tls": {"clientCertSecretRef": {}}}, "clientCertSecretRef.name: Required value"),
    ],
    ids=[
        "username-literal",
        "ca-literal",
        "key-literal",
        "two-cas",
        "disabled-with-settings",
        "bad-server-name",
        "username-ref-without-name",
        "client-ref-without-name",
    ],
)
def test_bad_redis_tls_and_acl_settings_are_rejected_with_a_clear_message(
    sessions: client.CustomObjectsApi, namespace: str, redis: dict[str, Any], expected: str
) -> None:
    body = _session(f"bad-{uuid.uuid4().hex[:6]}", redis=redis)
    assert expected in _rejected(sessions, namespace, body)


def test_redis_tls_and_acl_references_are_accepted_and_defaulted(
    sessions: client.CustomObjectsApi, namespace: str
) -> None:
    body = _session(
        "tls",
        redis={
            "usernameSecretRef": {"name": "acl"},
            "tls": {
                "caConfigMapRef": {"name": "bundle"},
                "clientCertSecretRef": {"name": "client"},
                "serverName": "redis.example.internal",
            },
        },
    )
    created = sessions.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    redis = created["spec"]["redis"]
    assert redis["usernameSecretRef"] == {"name": "acl", "key": "username"}
    assert redis["tls"]["enabled"] is True
    assert redis["tls"]["caConfigMapRef"] == {"name": "bundle", "key": "ca.crt"}
    assert redis["tls"]["clientCertSecretRef"] == {
        "name": "client",
        "certKey": "tls.crt",
        "keyKey": "tls.key",
    }
