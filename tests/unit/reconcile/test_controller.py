"""The controller's reactions to watch events: drift restored, polls followed, no early status."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from support.controllers import KEY, RecordingKube, body
from usersession_operator.builders import DEPLOYMENT, TRIGGER_AUTH, ChildKind
from usersession_operator.reconcile.controller import Controller

_NOW = "2026-01-01T00:00:00Z"


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


def test_a_reconciled_session_is_polled_until_it_goes(controller: Controller) -> None:
    asyncio.run(controller.handler.reconcile(KEY))
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
    asyncio.run(controller.handler.reconcile(KEY))
    assert len(kube.patches) == 1  # the reconcile's own, once
