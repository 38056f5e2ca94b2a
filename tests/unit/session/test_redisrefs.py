"""spec.redis.usernameSecretRef and spec.redis.tls: parsing, defaults, refusals."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from usersession_operator.session.model import InvalidSession, Session
from usersession_operator.session.redisrefs import (
    CONFIG_MAP,
    SECRET,
    KeyRef,
    RedisAuthDefaults,
    RedisTls,
    auth_defaults_from_env,
)
from usersession_operator.session.spec import session_from_body
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.settings import OperatorSettings

MakeSession = Callable[..., Session]
MakeBody = Callable[..., dict[str, Any]]

DEFAULT_TLS = RedisTls(ca=KeyRef(CONFIG_MAP, "platform-ca", "bundle.pem"), server_name="r.example")


def with_auth(settings: OperatorSettings, auth: RedisAuthDefaults) -> OperatorSettings:
    return dataclasses.replace(settings, redis=dataclasses.replace(settings.redis, auth=auth))


def test_plaintext_and_default_user_unless_configured(make_session: MakeSession) -> None:
    redis = make_session().redis
    assert (redis.username_secret, redis.tls) == (None, None)


def test_full_tls_spec(make_session: MakeSession) -> None:
    redis = make_session(
        redis={
            "usernameSecretRef": {"name": "acl"},
            "tls": {
                "caSecretRef": {"name": "ca"},
                "clientCertSecretRef": {"name": "client", "keyKey": "private.pem"},
                "serverName": "redis.internal",
            },
        }
    ).redis
    assert redis.username_secret == KeyRef(SECRET, "acl", "username")
    assert redis.tls == RedisTls(
        ca=KeyRef(SECRET, "ca", "ca.crt"),
        client_cert=KeyRef(SECRET, "client", "tls.crt"),
        client_key=KeyRef(SECRET, "client", "private.pem"),
        server_name="redis.internal",
    )


def test_ca_from_a_config_map_and_tls_with_system_cas(make_session: MakeSession) -> None:
    tls = make_session(redis={"tls": {"caConfigMapRef": {"name": "bundle", "key": "ca.pem"}}})
    assert tls.redis.tls == RedisTls(ca=KeyRef(CONFIG_MAP, "bundle", "ca.pem"))
    assert make_session(redis={"tls": {}}).redis.tls == RedisTls()


def test_defaults_apply_unless_the_session_sets_its_own(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    configured = with_auth(
        settings, RedisAuthDefaults(username=KeyRef(SECRET, "acl", "user"), tls=DEFAULT_TLS)
    )
    plain = session_from_body(make_body(), configured).redis
    assert (plain.username_secret, plain.tls) == (KeyRef(SECRET, "acl", "user"), DEFAULT_TLS)
    # Given, spec.redis.tls replaces the default whole: no CA or server name inherited.
    own = session_from_body(make_body(redis={"tls": {"enabled": True}}), configured).redis
    assert own.tls == RedisTls()
    off = session_from_body(make_body(redis={"tls": {"enabled": False}}), configured).redis
    assert off.tls is None


@pytest.mark.parametrize(
    ("redis", "message"),
    [
        ({"username": "app"}, "spec.redis.username is not allowed"),
        ({"tls": {"ca": "-----BEGIN"}}, "spec.redis.tls.ca is not allowed"),
        ({"tls": {"key": "-----BEGIN"}}, "spec.redis.tls.key is not allowed"),
        (
            {"tls": {"caSecretRef": {"name": "a"}, "caConfigMapRef": {"name": "b"}}},
            "caSecretRef or caConfigMapRef, not both",
        ),
        (
            {"tls": {"enabled": False, "serverName": "x"}},
            "spec.redis.tls.enabled is false",
        ),
        ({"tls": {"enabled": "yes"}}, "spec.redis.tls.enabled must be true or false"),
        ({"usernameSecretRef": {"key": "u"}}, "spec.redis.usernameSecretRef.name is required"),
        ({"tls": {"clientCertSecretRef": {}}}, "clientCertSecretRef.name is required"),
    ],
)
def test_refusals_name_the_field(
    make_session: MakeSession, redis: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSession, match=message):
        make_session(redis=redis)


def test_operator_settings_from_env() -> None:
    settings = OperatorSettings.from_env(
        {
            "USERSESSION_REDIS_USERNAME_SECRET_NAME": "acl",
            "USERSESSION_REDIS_TLS": "true",
            "USERSESSION_REDIS_TLS_CA_CONFIGMAP_NAME": "trust",
            "USERSESSION_REDIS_TLS_CA_KEY": "bundle.pem",
            "USERSESSION_REDIS_TLS_CLIENT_SECRET_NAME": "client",
            "USERSESSION_REDIS_TLS_SERVER_NAME": "redis.internal",
        }
    )
    assert settings.redis.auth == RedisAuthDefaults(
        username=KeyRef(SECRET, "acl", "username"),
        tls=RedisTls(
            ca=KeyRef(CONFIG_MAP, "trust", "bundle.pem"),
            client_cert=KeyRef(SECRET, "client", "tls.crt"),
            client_key=KeyRef(SECRET, "client", "tls.key"),
            server_name="redis.internal",
        ),
    )
    assert OperatorSettings.from_env({}).redis.auth == RedisAuthDefaults()


def test_session_api_reads_the_same_defaults_under_its_prefix() -> None:
    settings = ApiSettings.from_env(
        {"SESSIONAPI_REDIS_TLS": "1", "SESSIONAPI_REDIS_TLS_CA_SECRET_NAME": "ca"}
    )
    assert settings.operator_view().redis.auth.tls == RedisTls(ca=KeyRef(SECRET, "ca", "ca.crt"))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_TLS": "maybe"}, "X_REDIS_TLS must be true or false"),
        ({"REDIS_TLS_CA_SECRET_NAME": "ca"}, "X_REDIS_TLS is not true"),
        (
            {
                "REDIS_TLS": "true",
                "REDIS_TLS_CA_SECRET_NAME": "a",
                "REDIS_TLS_CA_CONFIGMAP_NAME": "b",
            },
            "not both",
        ),
    ],
)
def test_contradictory_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        auth_defaults_from_env(env.get, "X_")
