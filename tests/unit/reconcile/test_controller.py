"""The controller's behaviour with the Kubernetes API replaced by a recorder.

Warning events when a session newly cannot wake; work arriving pushed to KEDA
and wakes timed. The status itself is covered in test_status.py.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import Any

import kopf
import pytest
from kubernetes.client import ApiException

from usersession_operator import metrics
from usersession_operator.builders import DEPLOYMENT, TRIGGER_AUTH, ChildKind
from usersession_operator.reconcile import controller as controller_module
from usersession_operator.reconcile.controller import Controller
from usersession_operator.session.model import FINALIZER
from usersession_operator.session.names import INSTANCE_LABEL
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import QueueReading, ReconcileResult

NAMESPACE, NAME = "team-a", "alice"
KEY = (NAMESPACE, NAME)
WRONGPASS = "error establishing redis connection: WRONGPASS invalid username-password pair"


class RecordingKube:
    """Kube's interface, in memory: records writes, can be told to refuse applies."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []
        self.events: list[tuple[str, str, str, str]] = []
        self.calls: list[str] = []
        self.applied: list[dict[str, Any]] = []
        self.event_error: Exception | None = None
        self.apply_error: Exception | None = None

    def apply(self, body: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any]:
        if self.apply_error is not None:
            raise self.apply_error
        self.applied.append(copy.deepcopy(body))
        self.calls.append(f"apply {body['kind']}")
        return copy.deepcopy(body)

    def apply_deployment(self, body: dict[str, Any], *_: Any, **__: Any) -> dict[str, Any]:
        return self.apply(body)

    def get(self, *_: Any) -> dict[str, Any] | None:
        return None

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append(copy.deepcopy(patch))
        self.calls.append(f"status {patch.get('phase')}")

    def delete_session(self, namespace: str, name: str, uid: str) -> None:
        self.calls.append(f"delete {name} {uid}")

    def post_event(self, session: dict[str, Any], type_: str, reason: str, message: str) -> None:
        if self.event_error is not None:
            raise self.event_error
        self.events.append((session["metadata"]["name"], type_, reason, message))
        self.calls.append(f"event {reason}")


def _child(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {INSTANCE_LABEL: NAME}},
        **extra,
    }


def _scaled_object(ready: str, message: str = "ready for scaling") -> dict[str, Any]:
    reason = "ScaledObjectReady" if ready == "True" else "ScaledObjectCheckFailed"
    condition = {"type": "Ready", "status": ready, "reason": reason, "message": message}
    return _child("ScaledObject", status={"conditions": [condition]})


@pytest.fixture
def kube() -> RecordingKube:
    return RecordingKube()


class NoKeyspaceEvents:
    """The Redis side's notifications, absent: these tests drive readings by hand."""

    def add(self, *_: Any) -> None:
        return None

    def sync(self, *_: Any) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
def controller(kube: RecordingKube) -> Controller:
    controller = Controller(OperatorSettings(), kube)  # type: ignore[arg-type]
    controller.poller.watcher = NoKeyspaceEvents()  # type: ignore[assignment]
    state = controller.state
    state.upsert_session(
        {
            "apiVersion": "sessions.ai-infra.dev/v1alpha1",
            "kind": "UserSession",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "uid": "u-1", "generation": 1},
            "spec": {"userId": "alice@example.com", "workload": {"image": "worker:1"}},
        }
    )
    state.record_child(state.deployments, _child("Deployment", spec={"replicas": 0}), False)
    state.record_child(state.trigger_authentications, _child("TriggerAuthentication"), False)
    state.record_child(state.scaled_objects, _scaled_object("True"), False)
    state.queues[KEY] = QueueReading(0)
    state.reconciled[KEY] = ReconcileResult(1)
    return controller


def _refresh(controller: Controller) -> None:
    asyncio.run(controller.refresh_status(KEY))


def _scaler(controller: Controller, ready: str, message: str = WRONGPASS) -> None:
    controller.state.record_child(
        controller.state.scaled_objects, _scaled_object(ready, message), False
    )


def test_one_event_when_the_scaler_starts_failing(
    controller: Controller, kube: RecordingKube
) -> None:
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Sleeping"
    assert kube.events == []

    _scaler(controller, "False")
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Degraded"
    assert kube.events == [
        (NAME, "Warning", "ScalerFailed", f"KEDA cannot scale the session: {WRONGPASS}")
    ]

    # Later polls find it as broken as before, even in other words: no more events.
    _refresh(controller)
    _scaler(controller, "False", WRONGPASS + ".")
    _refresh(controller)
    assert len(kube.events) == 1


def test_a_new_event_after_recovery_and_a_new_failure(
    controller: Controller, kube: RecordingKube
) -> None:
    _scaler(controller, "False")
    _refresh(controller)
    _scaler(controller, "True")
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Sleeping"
    assert len(kube.events) == 1

    controller.state.queues[KEY] = QueueReading(None, error="ConnectionError: Connection refused")
    _refresh(controller)
    assert [e[2] for e in kube.events] == ["ScalerFailed", "RedisUnreachable"]
    assert "Connection refused" in kube.events[-1][3]


def test_the_event_is_posted_before_the_status_says_why(
    controller: Controller, kube: RecordingKube
) -> None:
    # Whoever reads the Degraded status must find the event that explains it.
    _refresh(controller)
    _scaler(controller, "False")
    _refresh(controller)
    assert kube.calls[-2:] == ["event ScalerFailed", "status Degraded"]


def test_an_event_that_cannot_be_posted_does_not_fail_the_status_update(
    controller: Controller, kube: RecordingKube
) -> None:
    _scaler(controller, "False")
    kube.event_error = ApiException(status=403, reason="Forbidden")
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Degraded"
    assert controller.state.written_status[KEY]["phase"] == "Degraded"


# -- work arriving --------------------------------------------------------------


def _pod_is_ready(controller: Controller) -> None:
    ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    pod = _child("Pod", status=ready)
    pod["metadata"]["name"] = f"{NAME}-abc"
    controller.state.record_pod(pod, deleted=False)


def _stream(controller: Controller) -> asyncio.Queue[bool]:
    stream: asyncio.Queue[bool] = asyncio.Queue()
    controller.poller.push._streams[(NAMESPACE, NAME)] = {stream}
    return stream


def test_work_arriving_on_a_sleeping_session_is_pushed_once_and_timed(
    controller: Controller, kube: RecordingKube
) -> None:
    _refresh(controller)  # written: Sleeping
    stream = _stream(controller)
    controller.poller._record({KEY: QueueReading(1, 0)})
    controller.poller._record({KEY: QueueReading(2, 0)})  # still busy: nothing new to say
    controller.poller._record({KEY: QueueReading(0, 1)})  # taken by the worker: still busy
    assert stream.qsize() == 1 and stream.get_nowait() is True
    assert KEY in controller.state.wake_started

    # The pod comes up: the wake is over, timed in status, and forgotten.
    state = controller.state
    state.record_child(state.deployments, _child("Deployment", spec={"replicas": 1}), False)
    _pod_is_ready(controller)
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    assert kube.patches[-1]["lastWakeSeconds"] >= 0
    assert KEY not in controller.state.wake_started

    controller.poller._record({KEY: QueueReading(0, 0)})
    controller.poller._record({KEY: QueueReading(1, 0)})  # idle, then busy again: a new push
    assert stream.qsize() == 1


def test_a_wake_keda_began_before_the_work_was_seen_is_timed_and_counted(
    controller: Controller, kube: RecordingKube
) -> None:
    _refresh(controller)  # written: Sleeping
    wakes = _wakes_counted()
    state = controller.state
    # KEDA polled Redis first: the scale-up is the first the operator hears of it.
    state.record_child(state.deployments, _child("Deployment", spec={"replicas": 1}), False)
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Waking"
    assert KEY in state.wake_started
    controller.poller._record({KEY: QueueReading(1, 0)})  # the work, seen late
    _pod_is_ready(controller)
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    assert kube.patches[-1]["lastWakeSeconds"] >= 0
    assert _wakes_counted() == wakes + 1
    assert KEY not in state.wake_started


def _wakes_counted() -> float:
    return metrics.REGISTRY.get_sample_value("usersession_wake_duration_seconds_count") or 0.0


def test_work_on_a_running_session_is_pushed_but_not_timed_as_a_wake(
    controller: Controller, kube: RecordingKube
) -> None:
    state = controller.state
    state.record_child(state.deployments, _child("Deployment", spec={"replicas": 1}), False)
    _pod_is_ready(controller)
    _refresh(controller)
    assert kube.patches[-1]["phase"] == "Running"
    stream = _stream(controller)
    controller.poller._record({KEY: QueueReading(1, 0)})
    assert stream.qsize() == 1
    assert KEY not in controller.state.wake_started


# -- reconcile, drift, status writes, the finalizer ----------------------------------


def _body(controller: Controller) -> dict[str, Any]:
    return copy.deepcopy(controller.state.sessions[KEY])


def test_a_refused_apply_makes_the_session_degraded_and_is_retried(
    controller: Controller, kube: RecordingKube
) -> None:
    refusal = ApiException(status=422, reason="Unprocessable Entity")
    refusal.body = '{"message": "spec.template.labels: Invalid value: \\"not valid!\\""}'
    kube.apply_error = refusal
    with pytest.raises(kopf.TemporaryError):  # kopf retries it
        asyncio.run(controller.reconcile(_body(controller)))
    assert kube.patches[-1]["phase"] == "Degraded"
    ready = next(c for c in kube.patches[-1]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ReconcileFailed"
    assert "spec.template.labels" in ready["message"]

    kube.apply_error = None  # the retry works: all three children, in order
    asyncio.run(controller.reconcile(_body(controller)))
    assert [c for c in kube.calls if c.startswith("apply")] == [
        "apply TriggerAuthentication",
        "apply Deployment",
        "apply ScaledObject",
    ]
    assert kube.patches[-1]["phase"] == "Sleeping"


def test_a_hand_edited_child_is_restored_and_an_unchanged_one_is_left_alone(
    controller: Controller, kube: RecordingKube
) -> None:
    session = controller._live_session(KEY)
    assert session is not None
    built = DEPLOYMENT.build(session)
    assert built is not None
    _seen(controller, DEPLOYMENT, "MODIFIED", built)
    assert kube.applied == []  # what the operator applied itself is not drift

    edited = copy.deepcopy(built)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil.example.com/miner"
    _seen(controller, DEPLOYMENT, "MODIFIED", edited)
    assert kube.applied[-1]["spec"]["template"]["spec"]["containers"][0]["image"] == "worker:1"


def _seen(controller: Controller, kind: ChildKind, event: str, body: dict[str, Any]) -> None:
    """A watch event, handled on a loop as the watches deliver it, and its aftermath."""

    async def deliver() -> None:
        controller.child_seen(kind, event, body)
        await controller.settle()

    asyncio.run(deliver())


def test_a_second_reconcile_of_an_unchanged_session_writes_nothing(
    controller: Controller, kube: RecordingKube
) -> None:
    asyncio.run(controller.reconcile(_body(controller)))
    applied, patched = len(kube.applied), len(kube.patches)
    assert applied == 3  # the fixture's children were never seen to match
    asyncio.run(controller.reconcile(_body(controller)))  # e.g. after a restart
    assert (len(kube.applied), len(kube.patches)) == (applied, patched)

    changed = _body(controller)
    changed["spec"]["workload"]["image"] = "worker:2"
    changed["metadata"]["generation"] = 2
    changed["metadata"]["resourceVersion"] = "2"
    asyncio.run(controller.reconcile(changed))
    assert [b["kind"] for b in kube.applied[applied:]] == ["Deployment"]  # only what differs


def test_child_events_before_the_first_reconcile_write_no_status(
    controller: Controller, kube: RecordingKube
) -> None:
    del controller.state.reconciled[KEY]  # a new session, its reconcile still applying
    session = controller._live_session(KEY)
    assert session is not None
    _seen(controller, TRIGGER_AUTH, "ADDED", TRIGGER_AUTH.build(session) or {})
    assert kube.patches == []
    asyncio.run(controller.reconcile(_body(controller)))
    assert len(kube.patches) == 1  # the reconcile's own, once


def test_status_is_written_only_when_it_changes(
    controller: Controller, kube: RecordingKube
) -> None:
    _refresh(controller)
    _refresh(controller)
    _refresh(controller)
    assert len(kube.patches) == 1
    controller.state.queues[KEY] = QueueReading(3, 0)
    _refresh(controller)
    assert len(kube.patches) == 2
    assert kube.patches[-1]["queueDepth"] == 3


class DownRedis:
    """The Redis side of the finalizer, unreachable."""

    async def delete_session_keys(self, target: Any) -> list[str]:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def close(self) -> None:
        return None


def test_the_finalizer_retries_while_redis_is_down_then_gives_up_naming_the_keys(
    controller: Controller, kube: RecordingKube
) -> None:
    controller.queues = DownRedis()  # type: ignore[assignment]
    body = _body(controller)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    limit = controller.settings.cleanup_timeout_seconds

    with pytest.raises(kopf.TemporaryError):
        asyncio.run(controller.finalize(body, dt.timedelta(seconds=1), retry=0))
    assert kube.events[-1][2] == "RedisCleanupFailed"
    assert "Connection refused" in kube.events[-1][3]

    # Past the timeout: no more retries, and the event says what was left behind.
    asyncio.run(controller.finalize(body, dt.timedelta(seconds=limit), retry=9))
    assert kube.events[-1][2] == "RedisCleanupAbandoned"
    queue = f"usersession:{NAMESPACE}:{NAME}"
    assert f"{queue}, {queue}:processing, {queue}:reply:*" in kube.events[-1][3]


def test_an_idle_session_past_its_expiry_is_announced_then_deleted_once_asleep(
    controller: Controller, kube: RecordingKube
) -> None:
    state = controller.state
    body = _body(controller)
    body["spec"]["expireAfterIdleSeconds"] = 60
    body["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    state.upsert_session(body)  # as the watch delivers it
    state.queues[KEY] = QueueReading(0, 1)  # in flight: kept
    _refresh(controller)
    asyncio.run(controller.expire_idle())
    assert not [c for c in kube.calls if c.startswith("delete")]

    state.queues[KEY] = QueueReading(0, 0)
    _refresh(controller)  # the work is done: activity ends now
    asyncio.run(controller.expire_idle())
    assert not [c for c in kube.calls if c.startswith("delete")]  # idle for 0 s only
    state.written_status[KEY]["lastActivityTime"] = "2020-01-01T00:00:00Z"
    asyncio.run(controller.expire_idle())
    assert kube.calls[-2:] == ["event Expired", f"delete {NAME} u-1"]
    assert kube.events[-1][1] == "Normal"


def test_a_session_kopf_never_handed_over_is_reconciled_by_the_poll(
    controller: Controller, kube: RecordingKube, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(controller_module, "RESYNC_AFTER_SECONDS", 0.0)
    state = controller.state
    body = _body(controller)
    state.forget_session(KEY)  # then seen anew, never reconciled: kopf's event was lost
    body["metadata"]["finalizers"] = [FINALIZER]
    state.upsert_session(body)
    other = copy.deepcopy(body)
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
