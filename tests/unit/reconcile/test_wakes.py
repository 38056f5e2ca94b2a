"""Work arriving: pushed to KEDA once per wake, and the wake timed until the pod is Ready."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Mapping
from typing import Any

from support.controllers import KEY, NAME, NAMESPACE, RecordingKube, body, child, refresh
from usersession_operator import metrics
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.reconcile.controller import Controller
from usersession_operator.session.model import DEFAULT_START_TIMEOUT_SECONDS
from usersession_operator.state import Key, QueueReading
from usersession_operator.status.times import timestamp


def _pod_is_ready(controller: Controller) -> None:
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pod = child("Pod", status=ready)
    pod["metadata"]["name"] = f"{NAME}-abc"
    controller.state.record_pod(pod, deleted=False)


def _stream(controller: Controller) -> asyncio.Queue[bool]:
    return controller.poller.push.subscribe((NAMESPACE, NAME))


def _wakes_counted() -> float:
    return metrics.REGISTRY.get_sample_value("usersession_wake_duration_seconds_count") or 0.0


def test_work_arriving_on_a_sleeping_session_is_pushed_once_and_timed(
    controller: Controller, kube: RecordingKube
) -> None:
    refresh(controller)  # written: Sleeping
    stream = _stream(controller)
    record = controller.poller.record
    record({KEY: QueueReading(1, 0)})
    record({KEY: QueueReading(2, 0)})  # still busy: nothing new to say
    record({KEY: QueueReading(0, 1)})  # taken by the worker: still busy
    assert stream.qsize() == 1 and stream.get_nowait() is True
    assert KEY in controller.state.wake_started

    # The pod comes up: the wake is over, timed in status, and forgotten.
    state = controller.state
    state.record_child(state.deployments, child("Deployment", spec={"replicas": 1}), False)
    _pod_is_ready(controller)
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    assert kube.patches[-1]["lastWakeSeconds"] >= 0
    assert KEY not in controller.state.wake_started

    record({KEY: QueueReading(0, 0)})
    record({KEY: QueueReading(1, 0)})  # idle, then busy again: a new push
    assert stream.qsize() == 1


def test_a_wake_keda_began_before_the_work_was_seen_is_timed_and_counted(
    controller: Controller, kube: RecordingKube
) -> None:
    refresh(controller)  # written: Sleeping
    wakes = _wakes_counted()
    state = controller.state
    # KEDA polled Redis first: the scale-up is the first the operator hears of it.
    state.record_child(state.deployments, child("Deployment", spec={"replicas": 1}), False)
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Waking"
    assert KEY in state.wake_started
    controller.poller.record({KEY: QueueReading(1, 0)})  # the work, seen late
    _pod_is_ready(controller)
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    assert kube.patches[-1]["lastWakeSeconds"] >= 0
    assert _wakes_counted() == wakes + 1
    assert KEY not in state.wake_started


def test_work_on_a_running_session_is_pushed_but_not_timed_as_a_wake(
    controller: Controller, kube: RecordingKube
) -> None:
    state = controller.state
    state.record_child(state.deployments, child("Deployment", spec={"replicas": 1}), False)
    _pod_is_ready(controller)
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    stream = _stream(controller)
    controller.poller.record({KEY: QueueReading(1, 0)})
    assert stream.qsize() == 1
    assert KEY not in controller.state.wake_started


class BusyLists:
    async def read(self, targets: Mapping[Key, QueueTarget]) -> dict[Key, QueueReading]:
        return {key: QueueReading(1, 0) for key in targets}


def test_a_slow_status_write_does_not_hold_back_the_next_sessions_push(
    controller: Controller, kube: RecordingKube
) -> None:
    bob = (NAMESPACE, "bob")
    unblock = threading.Event()
    slow_patch = kube.patch_status

    def hanging_patch(namespace: str, name: str, patch: dict[str, Any]) -> None:
        unblock.wait(5)  # a status PATCH to a slow API server
        slow_patch(namespace, name, patch)

    kube.patch_status = hanging_patch  # type: ignore[method-assign]

    async def main() -> None:
        state = controller.state
        bob_body = {**state.sessions[KEY], "metadata": {"namespace": NAMESPACE, "name": "bob"}}
        state.upsert_session(bob_body)
        state.reconciled[bob] = state.reconciled[KEY]
        controller.poller.depths = BusyLists()  # type: ignore[assignment]
        pushed = {}
        for key in (KEY, bob):
            session = controller.parsed.live(key)
            assert session is not None
            controller.poller.follow(key, QueueTarget.of(session, controller.settings))
            pushed[key] = controller.poller.push.subscribe(state.child_key(key))
        reactor = asyncio.create_task(controller.react_forever())
        controller.poller.list_changed(KEY)
        assert await asyncio.wait_for(pushed[KEY].get(), 1) is True
        controller.poller.list_changed(bob)  # while Alice's status write hangs
        assert await asyncio.wait_for(pushed[bob].get(), 1) is True
        assert kube.patches == []
        unblock.set()
        await controller.settle()
        assert sorted(p["queueDepth"] for p in kube.patches) == [1, 1]  # the writes still happen
        reactor.cancel()

    asyncio.run(main())


# -- across a failover: the clock is in status, so a new leader keeps it ------------


def _new_leader_of(controller: Controller, kube: RecordingKube, **status: Any) -> Controller:
    """A second controller, as a standby taking over: nothing in memory but what the
    watches show, the session with the status the old leader last wrote (as JSON)."""
    fresh = Controller(controller.settings, kube, controller.connections)  # type: ignore[arg-type]
    fresh.poller.watcher = controller.poller.watcher
    state, old = fresh.state, controller.state
    written = json.loads(json.dumps(old.written_status[KEY])) | status
    state.upsert_session({**body(controller), "status": written})
    for table in ("deployments", "trigger_authentications", "scaled_objects"):
        getattr(state, table).update(getattr(old, table))
    state.reconciled[KEY] = old.reconciled[KEY]
    return fresh


def test_a_wake_begun_under_the_old_leader_times_out_on_the_old_clock(
    controller: Controller, kube: RecordingKube
) -> None:
    # Found by the chaos run: KEDA restarting, the leader killed. The new leader
    # started the clock afresh (or never, its written status empty) and a session
    # with work waiting past its start timeout went on saying Sleeping, Ready=True.
    refresh(controller)
    controller.poller.record({KEY: QueueReading(1, 0)})  # work arrives; KEDA is down
    refresh(controller)
    began = controller.state.wake_started[KEY]
    assert kube.patches[-1]["wakeStartedAt"] == timestamp(began)
    assert controller.state.written_status[KEY]["phase"] == "Sleeping"

    # The start timeout has passed since the old leader saw the work.
    long_ago = timestamp(began - dt.timedelta(seconds=DEFAULT_START_TIMEOUT_SECONDS + 1))
    leader = _new_leader_of(controller, kube, wakeStartedAt=long_ago)
    leader.poller.record({KEY: QueueReading(1, 0)})
    asyncio.run(leader.status.refresh(KEY))
    status = kube.patches[-1]
    assert status["phase"] == "Degraded"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WakeTimeout")


def test_work_that_arrives_while_status_says_degraded_still_times_out(
    controller: Controller, kube: RecordingKube
) -> None:
    # Found by the long chaos run: Redis restarting made status Degraded; the work
    # that arrived as it came back started no clock, and the session, which nothing
    # woke (KEDA restarting too), said Sleeping, Ready=True, for minutes.
    controller.poller.record({KEY: QueueReading(None, None, error="Connection refused")})
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Degraded"
    controller.poller.record({KEY: QueueReading(1, 0)})
    refresh(controller)
    began = controller.state.wake_started[KEY]
    assert kube.patches[-1]["wakeStartedAt"] == timestamp(began)

    controller.state.wake_started[KEY] = began - dt.timedelta(
        seconds=DEFAULT_START_TIMEOUT_SECONDS + 1
    )
    refresh(controller)
    status = kube.patches[-1]
    assert status["phase"] == "Degraded"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WakeTimeout")


def test_a_new_leader_that_sees_the_work_first_starts_the_clock_itself(
    controller: Controller, kube: RecordingKube
) -> None:
    refresh(controller)  # written: Sleeping, by the old leader
    leader = _new_leader_of(controller, kube)
    assert KEY not in leader.state.written_status
    leader.poller.record({KEY: QueueReading(1, 0)})
    assert KEY in leader.state.wake_started, "the object's own phase says it was asleep"


def test_the_wake_clock_leaves_status_once_the_wake_is_over(
    controller: Controller, kube: RecordingKube
) -> None:
    refresh(controller)
    controller.poller.record({KEY: QueueReading(1, 0)})
    refresh(controller)
    assert "wakeStartedAt" in kube.patches[-1]
    state = controller.state
    state.record_child(state.deployments, child("Deployment", spec={"replicas": 1}), False)
    _pod_is_ready(controller)
    refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    assert kube.patches[-1]["wakeStartedAt"] is None  # merge patch: removed
