"""What the session's pod and KEDA get for an ACL user and TLS: references only.

The username reaches the pod through a secretKeyRef and KEDA through the
TriggerAuthentication; the CA and the client certificate are mounted read-only
from their Secret or ConfigMap (files, because TLS libraries read files) and
named in the environment, so the worker needs no knowledge of Kubernetes.
"""

from __future__ import annotations

from typing import Any

from usersession_operator.session.model import Session
from usersession_operator.session.redisrefs import CONFIG_MAP, KeyRef

CA_VOLUME = "usersession-redis-ca"
CLIENT_VOLUME = "usersession-redis-client"
CA_DIR = "/var/run/secrets/usersession/redis-ca"
CLIENT_DIR = "/var/run/secrets/usersession/redis-client"
CA_FILE = f"{CA_DIR}/ca.crt"
CERT_FILE = f"{CLIENT_DIR}/tls.crt"
KEY_FILE = f"{CLIENT_DIR}/tls.key"


def redis_auth_env(session: Session) -> list[dict[str, Any]]:
    """REDIS_USERNAME and REDIS_TLS*, only when configured: a plaintext session's
    Deployment stays exactly as it was, so upgrading the operator restarts no pod."""
    redis = session.redis
    env: list[dict[str, Any]] = []
    if redis.username_secret is not None:
        ref = redis.username_secret
        env.append(
            {
                "name": "REDIS_USERNAME",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    tls = redis.tls
    if tls is None:
        return env
    env.append({"name": "REDIS_TLS", "value": "true"})
    if tls.ca is not None:
        env.append({"name": "REDIS_TLS_CA_FILE", "value": CA_FILE})
    if tls.client_cert is not None:
        env.append({"name": "REDIS_TLS_CERT_FILE", "value": CERT_FILE})
        env.append({"name": "REDIS_TLS_KEY_FILE", "value": KEY_FILE})
    if tls.server_name:
        env.append({"name": "REDIS_TLS_SERVER_NAME", "value": tls.server_name})
    return env


def redis_auth_volumes(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, container volumeMounts) for the CA and the client certificate."""
    tls = session.redis.tls
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if tls is None:
        return volumes, mounts
    if tls.ca is not None:
        volumes.append(_volume(CA_VOLUME, tls.ca, {tls.ca.key: "ca.crt"}))
        mounts.append({"name": CA_VOLUME, "mountPath": CA_DIR, "readOnly": True})
    if tls.client_cert is not None and tls.client_key is not None:
        items = {tls.client_cert.key: "tls.crt", tls.client_key.key: "tls.key"}
        volumes.append(_volume(CLIENT_VOLUME, tls.client_cert, items))
        mounts.append({"name": CLIENT_VOLUME, "mountPath": CLIENT_DIR, "readOnly": True})
    return volumes, mounts


def _volume(name: str, ref: KeyRef, items: dict[str, str]) -> dict[str, Any]:
    # Only the named keys, under fixed file names: the pod's paths do not depend
    # on how a Secret happens to name its keys, and other keys stay unmounted.
    listed = [{"key": key, "path": path} for key, path in items.items()]
    if ref.kind == CONFIG_MAP:
        return {"name": name, "configMap": {"name": ref.name, "items": listed}}
    return {"name": name, "secret": {"secretName": ref.name, "items": listed}}


def trigger_auth_refs(session: Session) -> dict[str, Any]:
    """The TriggerAuthentication's spec: KEDA's redis scaler parameters by reference.

    TLS itself is switched on in the ScaledObject's trigger metadata (enableTLS),
    since a TriggerAuthentication holds no literal values.
    """
    redis = session.redis
    secrets = [_target("password", redis.password_secret.name, redis.password_secret.key)]
    config_maps: list[dict[str, str]] = []
    if redis.username_secret is not None:
        secrets.append(_target("username", redis.username_secret.name, redis.username_secret.key))
    tls = redis.tls
    if tls is not None:
        if tls.ca is not None:
            into = config_maps if tls.ca.kind == CONFIG_MAP else secrets
            into.append(_target("ca", tls.ca.name, tls.ca.key))
        if tls.client_cert is not None and tls.client_key is not None:
            secrets.append(_target("cert", tls.client_cert.name, tls.client_cert.key))
            secrets.append(_target("key", tls.client_key.name, tls.client_key.key))
    spec: dict[str, Any] = {"secretTargetRef": secrets}
    if config_maps:
        spec["configMapTargetRef"] = config_maps
    return spec


def _target(parameter: str, name: str, key: str) -> dict[str, str]:
    # parameter: the redis scaler's own name for it (pkg/scalers/redis_scaler.go).
    return {"parameter": parameter, "name": name, "key": key}
