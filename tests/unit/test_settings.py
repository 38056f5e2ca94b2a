"""Operator settings from the environment, and the checks that refuse bad ones."""

from __future__ import annotations

import pytest

from usersession_operator.session.model import InvalidSession
from usersession_operator.settings import OperatorSettings


def test_defaults_without_environment() -> None:
    settings = OperatorSettings.from_env({})
    assert settings.namespaces == ()
    assert settings.redis.address == "redis:6379"
    assert settings.poll_interval_seconds == 5.0
    assert settings.listen_host == "127.0.0.1"
    assert (settings.push_port, settings.push_address) == (0, None)  # fast path off
    assert settings.push_tls_dir is None


def test_environment_overrides() -> None:
    settings = OperatorSettings.from_env(
        {
            "USERSESSION_NAMESPACES": "team-a, team-b,",
            "USERSESSION_REDIS_ADDRESS": "redis.example:6380",
            "USERSESSION_REDIS_DATABASE": "3",
            "USERSESSION_POLL_INTERVAL": "0.5",
            "USERSESSION_LOG_LEVEL": "debug",
            "USERSESSION_METRICS_PORT": "0",
            "USERSESSION_PUSH_PORT": "9443",
            "USERSESSION_PUSH_ADDRESS": "uso.ops.svc:9443",
            "USERSESSION_PUSH_TLS_DIR": "/etc/usersession-operator/push-tls",
        }
    )
    assert (settings.push_port, settings.push_address) == (9443, "uso.ops.svc:9443")
    assert settings.push_tls_dir == "/etc/usersession-operator/push-tls"
    assert settings.namespaces == ("team-a", "team-b")
    assert settings.redis.address == "redis.example:6380"
    assert settings.redis.database == 3
    assert settings.poll_interval_seconds == 0.5
    assert settings.log_level == "DEBUG"
    assert settings.metrics_port == 0


def test_a_malformed_number_names_its_variable() -> None:
    with pytest.raises(ValueError, match="USERSESSION_POLL_INTERVAL must be a number, got 'soon'"):
        OperatorSettings.from_env({"USERSESSION_POLL_INTERVAL": "soon"})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("USERSESSION_REDIS_ADDRESS", "no-port"),
        ("USERSESSION_REDIS_OPERATOR_ADDRESS", "a:b:c"),
        ("USERSESSION_PUSH_ADDRESS", "no-port"),
    ],
)
def test_check_refuses_bad_addresses(variable: str, value: str) -> None:
    settings = OperatorSettings.from_env({variable: value})
    with pytest.raises(InvalidSession, match=variable):
        settings.check()
