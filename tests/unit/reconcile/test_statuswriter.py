"""Status writes: only when something changed, and one Warning event when a session
newly cannot wake, posted before the status that explains it. The status itself is
computed in status/ (tests/unit/status)."""

from __future__ import annotations

from support.controllers import KEY, NAME, WRONGPASS, RecordingKube, refresh, scaled_object
from usersession_operator.kube.client import ApiException
from usersession_operator.reconcile.controller import Controller
from usersession_operator.state import QueueReading


def _scaler(controller: Controller, ready: str, message: str = WRONGPASS) -> None:
    state = controller.state
    state.record_child(state.scaled_objects, scaled_object(ready, message), False)


def test_one_event_when_the_scaler_starts_failing(
    controller: Controller, kube: RecordingKube
) -> None:
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Sleeping"
    assert kube.events == []

    _scaler(controller, "False")
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Degraded"
    assert kube.events == [
        (NAME, "Warning", "ScalerFailed", f"KEDA cannot scale the session: {WRONGPASS}")
    ]

    # Later polls find it as broken as before, even in other words: no more events.
    refresh(controller)
    _scaler(controller, "False", WRONGPASS + ".")
    refresh(controller)
    assert len(kube.events) == 1


def test_a_new_event_after_recovery_and_a_new_failure(
    controller: Controller, kube: RecordingKube
) -> None:
    _scaler(controller, "False")
    refresh(controller)
    _scaler(controller, "True")
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Sleeping"
    assert len(kube.events) == 1

    controller.state.queues[KEY] = QueueReading(None, error="ConnectionError: Connection refused")
    refresh(controller)
    assert [e[2] for e in kube.events] == ["ScalerFailed", "RedisUnreachable"]
    assert "Connection refused" in kube.events[-1][3]


def test_the_event_is_posted_before_the_status_says_why(
    controller: Controller, kube: RecordingKube
) -> None:
    # Whoever reads the Degraded status must find the event that explains it.
    refresh(controller)
    _scaler(controller, "False")
    refresh(controller)
    assert kube.calls[-2:] == ["event ScalerFailed", "status Degraded"]


def test_an_event_that_cannot_be_posted_does_not_fail_the_status_update(
    controller: Controller, kube: RecordingKube
) -> None:
    _scaler(controller, "False")
    kube.event_error = ApiException(status=403, reason="Forbidden")
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Degraded"
    assert controller.state.written_status[KEY]["phase"] == "Degraded"


def test_status_is_written_only_when_it_changes(
    controller: Controller, kube: RecordingKube
) -> None:
    refresh(controller)
    refresh(controller)
    refresh(controller)
    assert len(kube.patches) == 1
    controller.state.queues[KEY] = QueueReading(3, 0)
    refresh(controller)
    assert len(kube.patches) == 2
    assert kube.patches[-1]["queueDepth"] == 3
