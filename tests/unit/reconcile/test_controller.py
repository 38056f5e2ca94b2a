"""The controller's reactions to watch events: drift restored, polls followed, no early status."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from support.controllers import KEY, RecordingKube, body
from usersession_operator.builders import DEPLOYMENT, SCALED_OBJECT, TRIGGER_AUTH, ChildKind
from usersession_operator.builders.scaledobject import PAUSED_REPLICAS_ANNOTATION
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


def test_a_resume_is_applied_even_if_the_paused_child_was_seen_first(
    controller: Controller, kube: RecordingKube
) -> None:
    # Found by the chaos run. Suspend: the operator applies a paused ScaledObject.
    suspended = body(controller)
    suspended["metadata"]["generation"] = 2
    suspended["spec"]["suspend"] = True
    controller.state.upsert_session(suspended)
    asyncio.run(controller.handler.reconcile(KEY))
    [paused] = [b for b in kube.applied if b["kind"] == "ScaledObject"]
    assert PAUSED_REPLICAS_ANNOTATION in paused["metadata"]["annotations"]

    # Resume; before its reconcile runs, a watch event of the still-paused child
    # (KEDA writing its status, a re-list) is judged against the resumed spec. The
    # paused child "contains" the resumed manifest, which lacks the annotation.
    resumed = copy.deepcopy(suspended)
    resumed["metadata"]["generation"] = 3
    resumed["spec"]["suspend"] = False
    controller.state.upsert_session(resumed)
    _seen(controller, SCALED_OBJECT, "MODIFIED", paused)
    asyncio.run(controller.handler.reconcile(KEY))
    last = [b for b in kube.applied if b["kind"] == "ScaledObject"][-1]
    assert PAUSED_REPLICAS_ANNOTATION not in last["metadata"].get("annotations", {})


def test_a_child_applied_from_this_spec_is_not_applied_again(
    controller: Controller, kube: RecordingKube
) -> None:
    # The stamp keeps the no-write reconcile: an operator taking over lists children
    # another replica applied from the same spec, and writes nothing.
    asyncio.run(controller.handler.reconcile(KEY))
    applied = len(kube.applied)
    for live in list(kube.applied):
        kind = {k.kind: k for k in (DEPLOYMENT, SCALED_OBJECT, TRIGGER_AUTH)}[live["kind"]]
        _seen(controller, kind, "MODIFIED", live)
    controller.state.reconciled.clear()  # as after a takeover
    asyncio.run(controller.handler.reconcile(KEY))
    assert len(kube.applied) == applied


def test_a_new_deployment_carries_the_stamp_from_its_create(
    controller: Controller, kube: RecordingKube
) -> None:
    # A new Deployment is made by the create body alone. Found by test_scale after
    # the long chaos run: without the stamp there, every takeover re-applied every
    # Deployment.
    controller.state.deployments.clear()
    controller.children_synced = True
    asyncio.run(controller.handler.reconcile(KEY))
    [created] = [b for b in kube.applied if b["kind"] == "Deployment"]
    assert created["spec"]["replicas"] == 0  # the create body, not the main one
    _seen(controller, DEPLOYMENT, "ADDED", created)
    controller.state.reconciled.clear()  # as after a takeover
    applied = len(kube.applied)
    asyncio.run(controller.handler.reconcile(KEY))
    assert len(kube.applied) == applied


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
