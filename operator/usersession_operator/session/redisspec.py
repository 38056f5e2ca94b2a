"""Reading spec.redis: the address, database and Secret references of a session's
Redis, with the operator's defaults for what the session leaves out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usersession_operator.session import fields
from usersession_operator.session.model import (
    DEFAULT_SECRET_KEY,
    Defaults,
    InvalidSession,
    RedisTarget,
    SecretKeyRef,
    parse_address,
)
from usersession_operator.session.redisrefs import (
    CONFIG_MAP,
    DEFAULT_CA_KEY,
    DEFAULT_CERT_KEY,
    DEFAULT_KEY_KEY,
    DEFAULT_USERNAME_KEY,
    SECRET,
    KeyRef,
    RedisTls,
)


def redis_target(redis: Mapping[str, Any], defaults: Defaults) -> RedisTarget:
    if "password" in redis:
        # Normally refused by the CRD; repeated for servers without CEL validation.
        raise InvalidSession(
            "spec.redis.password is not allowed: store the password in a Secret"
            " and reference it with spec.redis.passwordSecretRef"
        )
    address = fields.optional_text(redis, "address", "spec.redis.address")
    if address is None:
        host, port = parse_address(defaults.redis.address, "the operator's Redis address setting")
    else:
        host, port = parse_address(address, "spec.redis.address")
    ref = fields.mapping(redis.get("passwordSecretRef"), "spec.redis.passwordSecretRef")
    if ref:
        secret = SecretKeyRef(
            name=fields.text(ref, "name", "spec.redis.passwordSecretRef.name"),
            key=fields.optional_text(ref, "key", "spec.redis.passwordSecretRef.key")
            or DEFAULT_SECRET_KEY,
        )
    else:
        secret = SecretKeyRef(defaults.redis.secret_name, defaults.redis.secret_key)
    return RedisTarget(
        host=host,
        port=port,
        database=fields.integer(
            redis, "database", defaults.redis.database, "spec.redis.database", 0
        ),
        password_secret=secret,
        username_secret=_username(redis, defaults),
        tls=_tls(redis, defaults),
    )


def _username(redis: Mapping[str, Any], defaults: Defaults) -> KeyRef | None:
    if "username" in redis:
        # As for the password: refused by the CRD, repeated here.
        raise InvalidSession(
            "spec.redis.username is not allowed: store the username in a Secret"
            " and reference it with spec.redis.usernameSecretRef"
        )
    ref = fields.mapping(redis.get("usernameSecretRef"), "spec.redis.usernameSecretRef")
    if not ref:
        return defaults.redis.auth.username
    return _key_ref(ref, SECRET, "spec.redis.usernameSecretRef", DEFAULT_USERNAME_KEY)


def _tls(redis: Mapping[str, Any], defaults: Defaults) -> RedisTls | None:
    """spec.redis.tls replaces the operator's default as a whole, as passwordSecretRef
    does: a session never runs with half its own TLS settings and half the default's."""
    if redis.get("tls") is None:
        return defaults.redis.auth.tls
    tls = fields.mapping(redis.get("tls"), "spec.redis.tls")
    for literal, use in (
        ("ca", "caSecretRef or caConfigMapRef"),
        ("cert", "clientCertSecretRef"),
        ("key", "clientCertSecretRef"),
    ):
        if literal in tls:
            raise InvalidSession(
                f"spec.redis.tls.{literal} is not allowed: store it in a Secret"
                f" and reference it with spec.redis.tls.{use}"
            )
    enabled = tls.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidSession("spec.redis.tls.enabled must be true or false")
    if not enabled:
        if set(tls) - {"enabled"}:
            raise InvalidSession(
                "spec.redis.tls.enabled is false: remove the other spec.redis.tls fields"
            )
        return None
    ca_secret = fields.mapping(tls.get("caSecretRef"), "spec.redis.tls.caSecretRef")
    ca_map = fields.mapping(tls.get("caConfigMapRef"), "spec.redis.tls.caConfigMapRef")
    if "caSecretRef" in tls and "caConfigMapRef" in tls:
        raise InvalidSession("spec.redis.tls: set caSecretRef or caConfigMapRef, not both")
    # Presence, not truthiness: an empty reference is a mistake to report.
    ca = None
    if "caSecretRef" in tls:
        ca = _key_ref(ca_secret, SECRET, "spec.redis.tls.caSecretRef", DEFAULT_CA_KEY)
    elif "caConfigMapRef" in tls:
        ca = _key_ref(ca_map, CONFIG_MAP, "spec.redis.tls.caConfigMapRef", DEFAULT_CA_KEY)
    client = fields.mapping(tls.get("clientCertSecretRef"), "spec.redis.tls.clientCertSecretRef")
    cert = key = None
    if "clientCertSecretRef" in tls:
        path = "spec.redis.tls.clientCertSecretRef"
        name = fields.text(client, "name", f"{path}.name")
        cert = KeyRef(
            SECRET,
            name,
            fields.optional_text(client, "certKey", f"{path}.certKey") or DEFAULT_CERT_KEY,
        )
        key = KeyRef(
            SECRET,
            name,
            fields.optional_text(client, "keyKey", f"{path}.keyKey") or DEFAULT_KEY_KEY,
        )
    return RedisTls(
        ca=ca,
        client_cert=cert,
        client_key=key,
        server_name=fields.optional_text(tls, "serverName", "spec.redis.tls.serverName") or None,
    )


def _key_ref(ref: Mapping[str, Any], kind: str, path: str, default_key: str) -> KeyRef:
    return KeyRef(
        kind,
        fields.text(ref, "name", f"{path}.name"),
        fields.optional_text(ref, "key", f"{path}.key") or default_key,
    )
