"""Fixtures for the pure, cluster-free unit tests."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from usersession_operator.session.model import Session
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings, RedisDefaults

MINIMAL_BODY: dict[str, Any] = {
    "apiVersion": "sessions.ai-infra.dev/v1alpha1",
    "kind": "UserSession",
    "metadata": {
        "name": "alice",
        "namespace": "team-a",
        "uid": "0b6f3c1e-1111-4222-8333-944455556666",
        "generation": 3,
    },
    "spec": {
        "userId": "alice@example.com",
        "workload": {"image": "registry.example.com/session-worker:0.1.0"},
    },
}


@pytest.fixture
def settings() -> OperatorSettings:
    # Deliberately unlike the built-in defaults, so tests can tell which one won.
    return OperatorSettings(
        redis=RedisDefaults(
            address="redis.platform.svc:6380",
            database=2,
            secret_name="platform-redis",
            secret_key="redis-password",
        )
    )


@pytest.fixture
def make_body() -> Callable[..., dict[str, Any]]:
    """A UserSession body with spec fields overridden by keyword."""

    def make(**spec: Any) -> dict[str, Any]:
        body = copy.deepcopy(MINIMAL_BODY)
        body["spec"].update(spec)
        return body

    return make


@pytest.fixture
def make_session(
    make_body: Callable[..., dict[str, Any]], settings: OperatorSettings
) -> Callable[..., Session]:
    def make(**spec: Any) -> Session:
        return session_from_body(make_body(**spec), settings)

    return make
