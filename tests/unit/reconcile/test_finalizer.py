"""The finalizer with Redis down, and expiry of idle sessions."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from support.controllers import KEY, NAME, NAMESPACE, RecordingKube, body, refresh
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.reconcile.controller import Controller
from usersession_operator.reconcile.finalizer import Finalizer
from usersession_operator.reconcile.queue import RetryLater
from usersession_operator.state import QueueReading


async def unreachable(connections: RedisConnections, target: QueueTarget) -> list[str]:
    raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_the_finalizer_retries_while_redis_is_down_then_gives_up_naming_the_keys(
    controller: Controller, kube: RecordingKube
) -> None:
    c = controller
    finalizer = Finalizer(
        c.settings, c.state, c.kube, c.connections, c.parsed, c.status, cleanup=unreachable
    )
    going = body(controller)
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    controller.state.upsert_session(going)
    limit = controller.settings.cleanup_timeout_seconds

    with pytest.raises(RetryLater) as retry:
        asyncio.run(finalizer.finalize(KEY, dt.timedelta(seconds=1)))
    assert 0.8 <= retry.value.delay <= 1.2  # about a second, spread
    with pytest.raises(RetryLater) as retry:
        asyncio.run(finalizer.finalize(KEY, dt.timedelta(seconds=2)))
    assert 1.6 <= retry.value.delay <= 2.4  # doubling
    assert kube.events[-1][2] == "RedisCleanupFailed"
    assert "Connection refused" in kube.events[-1][3]

    # Past the timeout: no more retries, and the event says what was left behind.
    asyncio.run(finalizer.finalize(KEY, dt.timedelta(seconds=limit)))
    assert kube.events[-1][2] == "RedisCleanupAbandoned"
    queue = f"usersession:{NAMESPACE}:{NAME}"
    assert f"{queue}, {queue}:processing, {queue}:reply:*" in kube.events[-1][3]


def test_an_idle_session_past_its_expiry_is_announced_then_deleted_once_asleep(
    controller: Controller, kube: RecordingKube
) -> None:
    state = controller.state
    expiring = body(controller)
    expiring["spec"]["expireAfterIdleSeconds"] = 60
    expiring["metadata"]["creationTimestamp"] = "2020-01-01T00:00:00Z"
    state.upsert_session(expiring)  # as the watch delivers it
    state.queues[KEY] = QueueReading(0, 1)  # in flight: kept
    refresh(controller)
    asyncio.run(controller.finalizer.expire_idle())
    assert not [c for c in kube.calls if c.startswith("delete")]

    state.queues[KEY] = QueueReading(0, 0)
    refresh(controller)  # the work is done: activity ends now
    asyncio.run(controller.finalizer.expire_idle())
    assert not [c for c in kube.calls if c.startswith("delete")]  # idle for 0 s only
    state.written_status[KEY]["lastActivityTime"] = "2020-01-01T00:00:00Z"
    asyncio.run(controller.finalizer.expire_idle())
    assert kube.calls[-2:] == ["event Expired", f"delete {NAME} u-1"]
    assert kube.events[-1][1] == "Normal"
