"""The typed UserSession values and the small helpers beside them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from usersession_operator.session.keys import default_queue_name, processing_key
from usersession_operator.session.model import (
    InvalidSession,
    RedisTarget,
    SecretKeyRef,
    Session,
    parse_address,
)


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("redis:6379", "redis", 6379),
        ("redis.sessions.svc.cluster.local:1", "redis.sessions.svc.cluster.local", 1),
        ("10.0.0.7:65535", "10.0.0.7", 65535),
        ("[::1]:6379", "::1", 6379),
        ("[fd00::10:5]:7000", "fd00::10:5", 7000),
    ],
)
def test_parse_address(address: str, host: str, port: int) -> None:
    assert parse_address(address, "x") == (host, port)


@pytest.mark.parametrize(
    "address",
    ["redis", "redis:", ":6379", "redis:port", "redis:0", "redis:65536", "::1:6379", "[::1]6379"],
)
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(InvalidSession, match="must be host:port"):
        parse_address(address, "spec.redis.address")


def test_ipv6_address_is_bracketed_again() -> None:
    target = RedisTarget("fd00::1", 6379, 0, SecretKeyRef("s", "k"))
    assert target.address == "[fd00::1]:6379"


def test_invalid_session_is_a_value_error() -> None:
    assert issubclass(InvalidSession, ValueError)


def test_session_is_frozen(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(AttributeError):
        session.name = "other"  # type: ignore[misc]


def test_key_names_derive_from_the_session() -> None:
    queue = default_queue_name("team-a", "alice")
    assert queue == "usersession:team-a:alice"
    assert processing_key(queue) == "usersession:team-a:alice:processing"
