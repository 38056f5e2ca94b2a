"""The Argo CD health check (argocd/usersession-health.lua) on hand-made edge cases.

Live statuses from the real operator are checked in tests/integration/test_handlers.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

Health = Callable[[Mapping[str, Any]], tuple[str, str]]


def _session(generation: int = 1, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "s", "generation": generation}}
    if status:
        obj["status"] = status
    return obj


def _ready(value: str, message: str = "m") -> list[dict[str, str]]:
    return [
        {"type": "RedisReachable", "status": "True", "message": "queue ok"},
        {"type": "Ready", "status": value, "reason": "r", "message": message},
    ]


def test_no_status_yet_is_progressing(argocd_health: Health) -> None:
    assert argocd_health(_session())[0] == "Progressing"


def test_status_of_an_older_generation_is_progressing(argocd_health: Health) -> None:
    obj = _session(generation=3, phase="Running", observedGeneration=2, conditions=_ready("True"))
    health, message = argocd_health(obj)
    assert health == "Progressing"
    assert "generation 3" in message


@pytest.mark.parametrize(
    ("phase", "ready", "expected"),
    [
        ("Sleeping", "True", "Healthy"),
        ("Running", "True", "Healthy"),
        ("Waking", "False", "Progressing"),
        ("Pending", "False", "Progressing"),
        ("Terminating", "False", "Progressing"),
        ("Suspended", "False", "Suspended"),
        ("Degraded", "False", "Degraded"),
    ],
)
def test_phase_and_ready_condition_map_to_health(
    argocd_health: Health, phase: str, ready: str, expected: str
) -> None:
    obj = _session(phase=phase, observedGeneration=1, conditions=_ready(ready, "why"))
    health, message = argocd_health(obj)
    assert health == expected
    assert message == f"{phase}: why"


def test_missing_conditions_do_not_break_the_script(argocd_health: Health) -> None:
    health, message = argocd_health(_session(phase="Sleeping", observedGeneration=1))
    assert health == "Progressing"
    assert message == "Sleeping"


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        (
            "ScalerFailed",
            "KEDA cannot scale the session: error establishing redis connection: WRONGPASS "
            "invalid username-password pair or user is disabled.",
        ),
        (
            "RedisUnreachable",
            "cannot read the queue: ConnectionError: Error 111 connecting to redis:6379.",
        ),
    ],
)
def test_session_that_cannot_wake_is_degraded_with_the_reason(
    argocd_health: Health, reason: str, message: str
) -> None:
    # Not Healthy: a sleeping session is healthy only because a message would wake it.
    conditions = [
        {"type": "Ready", "status": "False", "reason": reason, "message": message},
        {"type": "RedisReachable", "status": "True", "reason": "QueuePolled", "message": "ok"},
        {"type": "ScalerReady", "status": "False", "reason": "ScaledObjectCheckFailed"},
    ]
    obj = _session(phase="Degraded", observedGeneration=1, conditions=conditions)
    assert argocd_health(obj) == ("Degraded", f"Degraded: {message}")
