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


def test_lease_timings_come_from_the_environment() -> None:
    election = OperatorSettings.from_env(
        {
            "USERSESSION_LEADER_ELECTION_LEASE_SECONDS": "30",
            "USERSESSION_LEADER_ELECTION_RENEW_EVERY_SECONDS": "5",
            "USERSESSION_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": "20",
        }
    ).leader_election
    assert (election.lease_seconds, election.renew_every_seconds) == (30, 5.0)
    assert election.renew_deadline_seconds == 20.0


@pytest.mark.parametrize(
    ("lease", "every", "deadline", "named"),
    [
        # A leader still acting after a standby may take over: two operators at once.
        ("10", "2", "10", "RENEW_DEADLINE_SECONDS must be less than"),
        ("10", "8", "8", "RENEW_EVERY_SECONDS must be more than 0 and less than"),
        ("10", "0", "8", "RENEW_EVERY_SECONDS must be more than 0"),
    ],
)
def test_lease_timings_that_could_overlap_two_leaders_are_refused(
    lease: str, every: str, deadline: str, named: str
) -> None:
    settings = OperatorSettings.from_env(
        {
            "USERSESSION_LEADER_ELECTION_LEASE_SECONDS": lease,
            "USERSESSION_LEADER_ELECTION_RENEW_EVERY_SECONDS": every,
            "USERSESSION_LEADER_ELECTION_RENEW_DEADLINE_SECONDS": deadline,
        }
    )
    with pytest.raises(InvalidSession, match=named):
        settings.check()


def test_workload_defaults_come_from_the_environment_as_json() -> None:
    text = '{"priorityClassName": "sessions", "nodeSelector": {"pool": "sessions"}}'
    settings = OperatorSettings.from_env({"USERSESSION_WORKLOAD_DEFAULTS": text})
    assert settings.workload_defaults == {
        "priorityClassName": "sessions",
        "nodeSelector": {"pool": "sessions"},
    }
    assert OperatorSettings.from_env({}).workload_defaults == {}


@pytest.mark.parametrize(
    ("text", "complaint"), [("{nope", "is not JSON"), ("[1]", "must be a JSON object")]
)
def test_workload_defaults_that_are_not_a_json_object_name_the_variable(
    text: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=f"USERSESSION_WORKLOAD_DEFAULTS {complaint}"):
        OperatorSettings.from_env({"USERSESSION_WORKLOAD_DEFAULTS": text})
