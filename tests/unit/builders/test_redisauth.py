"""What KEDA and the pod get for an ACL user and TLS: references and files, never values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from usersession_operator.builders import build_children
from usersession_operator.builders.deployment import build_deployment
from usersession_operator.builders.scaledobject import build_scaled_object
from usersession_operator.builders.triggerauth import build_trigger_authentication
from usersession_operator.session.model import Session

MakeSession = Callable[..., Session]

MTLS = {
    "usernameSecretRef": {"name": "acl", "key": "user"},
    "tls": {
        "caSecretRef": {"name": "redis-ca"},
        "clientCertSecretRef": {"name": "client", "certKey": "c.pem", "keyKey": "k.pem"},
        "serverName": "redis.internal",
    },
}


def _pod(manifest: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return pod


def test_plaintext_children_have_no_tls_or_username(make_session: MakeSession) -> None:
    text = json.dumps(build_children(make_session()))
    for word in ("enableTLS", "REDIS_TLS", "REDIS_USERNAME", "volumes", "configMapTargetRef"):
        assert word not in text


def test_trigger_authentication_maps_every_reference(make_session: MakeSession) -> None:
    spec = build_trigger_authentication(make_session(redis=MTLS))["spec"]
    assert spec == {
        "secretTargetRef": [
            {"parameter": "password", "name": "platform-redis", "key": "redis-password"},
            {"parameter": "username", "name": "acl", "key": "user"},
            {"parameter": "ca", "name": "redis-ca", "key": "ca.crt"},
            {"parameter": "cert", "name": "client", "key": "c.pem"},
            {"parameter": "key", "name": "client", "key": "k.pem"},
        ]
    }


def test_a_config_map_ca_reaches_keda_as_a_config_map(make_session: MakeSession) -> None:
    session = make_session(redis={"tls": {"caConfigMapRef": {"name": "trust", "key": "b.pem"}}})
    spec = build_trigger_authentication(session)["spec"]
    assert spec["configMapTargetRef"] == [{"parameter": "ca", "name": "trust", "key": "b.pem"}]
    assert [ref["parameter"] for ref in spec["secretTargetRef"]] == ["password"]


def test_both_redis_triggers_ask_keda_for_tls(make_session: MakeSession) -> None:
    triggers = build_scaled_object(make_session(redis=MTLS))["spec"]["triggers"]
    redis_triggers = [t for t in triggers if t["type"] == "redis"]
    assert len(redis_triggers) == 2
    assert all(t["metadata"]["enableTLS"] == "true" for t in redis_triggers)


def test_pod_env_names_files_and_references_the_username(make_session: MakeSession) -> None:
    container = _pod(build_deployment(make_session(redis=MTLS)))["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_USERNAME"] == {
        "name": "REDIS_USERNAME",
        "valueFrom": {"secretKeyRef": {"name": "acl", "key": "user"}},
    }
    values = {name: e.get("value") for name, e in env.items()}
    assert values["REDIS_TLS"] == "true"
    assert values["REDIS_TLS_SERVER_NAME"] == "redis.internal"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert all(m["readOnly"] for m in mounts.values())
    for var in ("REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE"):
        directory, _, _ = values[var].rpartition("/")
        assert directory in mounts, var


def test_volumes_mount_only_the_named_keys(make_session: MakeSession) -> None:
    pod = _pod(build_deployment(make_session(redis=MTLS)))
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert {m["name"] for m in pod["containers"][0]["volumeMounts"]} == set(volumes)
    assert volumes["usersession-redis-ca"]["secret"] == {
        "secretName": "redis-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    assert volumes["usersession-redis-client"]["secret"] == {
        "secretName": "client",
        "items": [{"key": "c.pem", "path": "tls.crt"}, {"key": "k.pem", "path": "tls.key"}],
    }
    config_map = make_session(redis={"tls": {"caConfigMapRef": {"name": "trust"}}})
    (volume,) = _pod(build_deployment(config_map))["volumes"]
    assert volume["configMap"] == {"name": "trust", "items": [{"key": "ca.crt", "path": "ca.crt"}]}


def test_tls_without_a_ca_or_client_certificate_mounts_nothing(make_session: MakeSession) -> None:
    pod = _pod(build_deployment(make_session(redis={"tls": {}})))
    assert "volumes" not in pod
    assert "volumeMounts" not in pod["containers"][0]
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert "REDIS_TLS" in names
    assert "REDIS_TLS_CA_FILE" not in names
