"""The conditions over time (transition times, generations) and ScalerReady, mirrored from KEDA."""

from __future__ import annotations

import datetime as dt

import pytest

from support.statuses import (
    NOW,
    condition,
    deployment,
    observe,
    pod,
    scaled_object,
    ts,
)
from usersession_operator.session.model import Phase
from usersession_operator.status.compute import (
    compute_status,
)

# -- conditions over time -----------------------------------------------------


def test_conditions_are_stamped_with_now_the_first_time() -> None:
    status = compute_status(observe(), {})
    assert [c["type"] for c in status["conditions"]] == ["Ready", "RedisReachable", "ScalerReady"]
    for c in status["conditions"]:
        assert c["lastTransitionTime"] == "2025-03-14T12:00:00Z"
        assert c["observedGeneration"] == 3


def test_transition_time_is_kept_while_status_holds_and_renewed_when_it_flips() -> None:
    t1, t2, t3 = (NOW + dt.timedelta(minutes=m) for m in (5, 10, 15))
    sleeping = compute_status(observe(), {})

    # Sleeping -> Running: Ready stays True, so only reason and message move.
    running = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()], now=t1), sleeping
    )
    ready = condition(running, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.RUNNING)
    assert ready["lastTransitionTime"] == ts(NOW)

    # Running -> Waking (the pod went unready): Ready flips to False.
    waking = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[pod(ready=False)], now=t2), running
    )
    assert condition(waking, "Ready")["status"] == "False"
    assert condition(waking, "Ready")["lastTransitionTime"] == ts(t2)
    # The other conditions did not change.
    assert condition(waking, "RedisReachable")["lastTransitionTime"] == ts(NOW)
    assert condition(waking, "ScalerReady")["lastTransitionTime"] == ts(NOW)

    # ...and back to True.
    again = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()], now=t3), waking
    )
    assert condition(again, "Ready")["lastTransitionTime"] == ts(t3)


def test_condition_without_transition_time_gets_one() -> None:
    previous = {"conditions": [{"type": "Ready", "status": "True", "reason": "Sleeping"}]}
    status = compute_status(observe(), previous)
    assert condition(status, "Ready")["lastTransitionTime"] == ts(NOW)


def test_observed_generation_comes_from_the_reconciled_generation() -> None:
    previous = compute_status(observe(reconciled_generation=2), {})
    status = compute_status(observe(generation=4, reconciled_generation=4), previous)
    assert status["observedGeneration"] == 4
    assert {c["observedGeneration"] for c in status["conditions"]} == {4}


def test_observed_generation_is_kept_until_a_reconcile_succeeds() -> None:
    previous = compute_status(observe(reconciled_generation=2), {})
    status = compute_status(observe(generation=3, reconciled_generation=None), previous)
    assert status["observedGeneration"] == 2
    assert {c["observedGeneration"] for c in status["conditions"]} == {2}


def test_observed_generation_absent_before_any_reconcile() -> None:
    status = compute_status(observe(reconciled_generation=None), {})
    assert "observedGeneration" not in status
    assert all("observedGeneration" not in c for c in status["conditions"])


# -- ScalerReady ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ready", "reason", "message"),
    [
        ("True", "ScaledObjectReady", "ScaledObject is defined correctly and is ready"),
        ("False", "ScaledObjectCheckFailed", "ScaledObject doesn't have correct triggers"),
        ("Unknown", "ScaledObjectUnknown", "not checked yet"),
    ],
)
def test_scaler_ready_mirrors_keda(ready: str, reason: str, message: str) -> None:
    obs = observe(scaled_object_=scaled_object(ready, reason, message))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"], scaler["message"]) == (ready, reason, message)


@pytest.mark.parametrize(("ready", "fallback"), [("True", "KedaReady"), ("False", "KedaNotReady")])
def test_scaler_reason_fallback_matches_the_status(ready: str, fallback: str) -> None:
    obs = observe(scaled_object_=scaled_object(ready, reason=None, message=None))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"], scaler["message"]) == (ready, fallback, "")


def test_scaler_freshly_initialised_by_keda_is_unknown_not_ready() -> None:
    # KEDA initialises its conditions as Unknown with neither reason nor message.
    obs = observe(scaled_object_=scaled_object("Unknown", reason=None, message=None))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert scaler["status"] == "Unknown"
    # The same words as before KEDA wrote any status: no second status write for it.
    assert scaler["reason"] == "NoScalerStatus"


def test_scaler_without_status_is_unknown() -> None:
    obs = observe(scaled_object_=scaled_object(ready=None))
    scaler = condition(compute_status(obs, {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("Unknown", "NoScalerStatus")


def test_scaler_with_only_other_conditions_is_unknown() -> None:
    body = scaled_object()
    body["status"]["conditions"] = [c for c in body["status"]["conditions"] if c["type"] != "Ready"]
    scaler = condition(compute_status(observe(scaled_object_=body), {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("Unknown", "NoScalerStatus")


def test_scaler_missing_is_unknown() -> None:
    scaler = condition(compute_status(observe(scaled_object_=None), {}), "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("Unknown", "NoScalerStatus")
