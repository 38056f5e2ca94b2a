"""A session's turn on a worker (finalizer, reconcile, cleanup), with the API as a recorder."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from support.controllers import KEY, NAME, NAMESPACE, RecordingKube, body
from usersession_operator.kube.client import ApiException
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.reconcile.controller import Controller
from usersession_operator.session.model import FINALIZER
from usersession_operator.state import Key

_NOW = "2026-01-01T00:00:00Z"


def test_a_refused_apply_makes_the_session_degraded_and_is_retried(
    controller: Controller, kube: RecordingKube
) -> None:
    refusal = ApiException(status=422, reason="Unprocessable Entity")
    refusal.body = '{"message": "spec.template.labels: Invalid value: \\"not valid!\\""}'
    kube.apply_error = refusal
    del controller.state.reconciled[KEY]  # a new session
    assert 8.0 <= _handle(controller, body(controller)) <= 12.0  # a retry in about ten seconds
    assert kube.patches[-1]["phase"] == "Degraded"
    ready = next(c for c in kube.patches[-1]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ReconcileFailed"
    assert "spec.template.labels" in ready["message"]

    kube.apply_error = None  # the retry works: all three children, in order
    assert asyncio.run(controller.handler.handle(KEY)) is None
    assert [c for c in kube.calls if c.startswith("apply")] == [
        "apply TriggerAuthentication",
        "apply Deployment",
        "apply ScaledObject",
    ]
    # Reconciled: what is left is KEDA's to do (the recorder plays no KEDA).
    assert _ready_reason(kube.patches[-1]) == "ScalerNotReady"


def _ready_reason(status: dict[str, Any]) -> str:
    return next(c["reason"] for c in status["conditions"] if c["type"] == "Ready")


def _handle(controller: Controller, seen: dict[str, Any]) -> float | None:
    """The session as its watch delivers it, handled by a worker: when to look again."""
    controller.state.upsert_session(seen)
    return asyncio.run(controller.handler.handle(KEY))


def test_a_new_session_gets_the_finalizer_before_any_child(
    controller: Controller, kube: RecordingKube
) -> None:
    del controller.state.reconciled[KEY]
    assert _handle(controller, body(controller)) is None
    assert kube.calls[:2] == [f"finalizers {[FINALIZER]}", "apply TriggerAuthentication"]
    assert _ready_reason(kube.patches[-1]) == "ScalerNotReady"


def test_a_finalizer_someone_else_changed_meanwhile_is_tried_again_soon(
    controller: Controller, kube: RecordingKube
) -> None:
    kube.set_finalizers = lambda *_: False  # type: ignore[method-assign]
    assert _handle(controller, body(controller)) == 0.5
    assert kube.applied == []


def test_a_deleted_session_is_cleaned_up_and_let_go(
    controller: Controller, kube: RecordingKube
) -> None:
    cleaned: list[Key] = []

    async def cleanup(connections: object, target: QueueTarget) -> list[str]:
        cleaned.append((NAMESPACE, NAME))
        return [target.queue]

    controller.finalizer.cleanup = cleanup
    going = body(controller)
    going["metadata"] |= {"finalizers": [FINALIZER, "other/x"], "deletionTimestamp": _NOW}
    assert _handle(controller, going) is None
    assert cleaned == [KEY]
    assert kube.calls[-1] == "finalizers ['other/x']"  # only ours goes
    assert kube.patches[-1]["phase"] == "Terminating"


def test_a_status_write_of_our_own_makes_no_work(controller: Controller) -> None:
    settled = body(controller)
    settled["metadata"]["finalizers"] = [FINALIZER]
    controller.session_event("MODIFIED", settled)
    assert controller.queue.idle
    changed = copy.deepcopy(settled)
    changed["metadata"]["generation"] = 2
    controller.session_event("MODIFIED", changed)
    assert not controller.queue.idle


def test_a_second_reconcile_of_an_unchanged_session_writes_nothing(
    controller: Controller, kube: RecordingKube
) -> None:
    asyncio.run(controller.handler.reconcile(KEY))
    applied, patched = len(kube.applied), len(kube.patches)
    assert applied == 3  # the fixture's children were never seen to match
    asyncio.run(controller.handler.reconcile(KEY))  # e.g. after a restart
    assert (len(kube.applied), len(kube.patches)) == (applied, patched)

    changed = body(controller)
    changed["spec"]["workload"]["image"] = "worker:2"
    changed["metadata"] |= {"generation": 2, "resourceVersion": "2", "finalizers": [FINALIZER]}
    assert _handle(controller, changed) is None
    assert [b["kind"] for b in kube.applied[applied:]] == ["Deployment"]  # only what differs
