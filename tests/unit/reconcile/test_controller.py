"""Reconcile, drift and sessions kopf never handed over, with the API replaced by a recorder."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kopf
import pytest

from support.controllers import KEY, NAME, NAMESPACE, RecordingKube, body
from usersession_operator.builders import DEPLOYMENT, TRIGGER_AUTH, ChildKind
from usersession_operator.kube.client import ApiException
from usersession_operator.reconcile.controller import Controller
from usersession_operator.session.model import FINALIZER


def test_a_refused_apply_makes_the_session_degraded_and_is_retried(
    controller: Controller, kube: RecordingKube
) -> None:
    refusal = ApiException(status=422, reason="Unprocessable Entity")
    refusal.body = '{"message": "spec.template.labels: Invalid value: \\"not valid!\\""}'
    kube.apply_error = refusal
    with pytest.raises(kopf.TemporaryError):  # kopf retries it
        asyncio.run(controller.reconcile(body(controller)))
    assert kube.patches[-1]["phase"] == "Degraded"
    ready = next(c for c in kube.patches[-1]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ReconcileFailed"
    assert "spec.template.labels" in ready["message"]

    kube.apply_error = None  # the retry works: all three children, in order
    asyncio.run(controller.reconcile(body(controller)))
    assert [c for c in kube.calls if c.startswith("apply")] == [
        "apply TriggerAuthentication",
        "apply Deployment",
        "apply ScaledObject",
    ]
    assert kube.patches[-1]["phase"] == "Sleeping"


def test_a_hand_edited_child_is_restored_and_an_unchanged_one_is_left_alone(
    controller: Controller, kube: RecordingKube
) -> None:
    session = controller.parsed.live(KEY)
    assert session is not None
    built = DEPLOYMENT.build(session)
    assert built is not None
    _seen(controller, DEPLOYMENT, "MODIFIED", built)
    assert kube.applied == []  # what the operator applied itself is not drift

    edited = copy.deepcopy(built)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil.example.com/miner"
    _seen(controller, DEPLOYMENT, "MODIFIED", edited)
    assert kube.applied[-1]["spec"]["template"]["spec"]["containers"][0]["image"] == "worker:1"


def test_a_deleted_child_is_applied_again(controller: Controller, kube: RecordingKube) -> None:
    session = controller.parsed.live(KEY)
    assert session is not None
    built = DEPLOYMENT.build(session)
    assert built is not None
    _seen(controller, DEPLOYMENT, "MODIFIED", built)
    _seen(controller, DEPLOYMENT, "DELETED", built)
    assert [b["kind"] for b in kube.applied] == ["Deployment"]


def _seen(controller: Controller, kind: ChildKind, event: str, body: dict[str, Any]) -> None:
    """A watch event, handled on a loop as the watches deliver it, and its aftermath."""

    async def deliver() -> None:
        controller.child_seen(kind, event, body)
        await controller.settle()

    asyncio.run(deliver())


def test_a_second_reconcile_of_an_unchanged_session_writes_nothing(
    controller: Controller, kube: RecordingKube
) -> None:
    asyncio.run(controller.reconcile(body(controller)))
    applied, patched = len(kube.applied), len(kube.patches)
    assert applied == 3  # the fixture's children were never seen to match
    asyncio.run(controller.reconcile(body(controller)))  # e.g. after a restart
    assert (len(kube.applied), len(kube.patches)) == (applied, patched)

    changed = body(controller)
    changed["spec"]["workload"]["image"] = "worker:2"
    changed["metadata"]["generation"] = 2
    changed["metadata"]["resourceVersion"] = "2"
    asyncio.run(controller.reconcile(changed))
    assert [b["kind"] for b in kube.applied[applied:]] == ["Deployment"]  # only what differs


def test_a_reconciled_session_is_polled_until_it_goes(controller: Controller) -> None:
    asyncio.run(controller.reconcile(body(controller)))
    assert KEY in controller.poller.targets
    going = body(controller)
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    controller.session_event("MODIFIED", going)
    assert KEY not in controller.poller.targets  # its lists are the finalizer's now


def test_child_events_before_the_first_reconcile_write_no_status(
    controller: Controller, kube: RecordingKube
) -> None:
    del controller.state.reconciled[KEY]  # a new session, its reconcile still applying
    session = controller.parsed.live(KEY)
    assert session is not None
    _seen(controller, TRIGGER_AUTH, "ADDED", TRIGGER_AUTH.build(session) or {})
    assert kube.patches == []
    asyncio.run(controller.reconcile(body(controller)))
    assert len(kube.patches) == 1  # the reconcile's own, once


def test_a_session_kopf_never_handed_over_is_reconciled_by_the_poll(
    controller: Controller, kube: RecordingKube
) -> None:
    controller.resync_after = 0.0
    state = controller.state
    lost = body(controller)
    state.forget_session(KEY)  # then seen anew, never reconciled: kopf's event was lost
    lost["metadata"]["finalizers"] = [FINALIZER]
    state.upsert_session(lost)
    other = copy.deepcopy(lost)
    other["metadata"] |= {"name": "bob", "finalizers": []}  # kopf has not finished its part
    state.upsert_session(other)

    async def poll_and_settle() -> None:
        controller.resync()
        await controller.settle()

    asyncio.run(poll_and_settle())
    assert [b["metadata"]["name"] for b in kube.applied] == [NAME] * 3
    assert KEY in state.reconciled and (NAMESPACE, "bob") not in state.reconciled
    asyncio.run(poll_and_settle())
    assert len(kube.applied) == 3  # once only
