"""The operator and KEDA restarted in the middle of a session's life lose nothing.

The operator runs here as its own process (the command the image runs), not
under KopfRunner, so that it can be stopped and started again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from support.sessions import FAST_SCALING, Api, unique
from usersession_localstack import LocalCluster
from usersession_localstack.loopback import free_port
from usersession_localstack.process import Component
from usersession_localstack.stack import start_operator


@pytest.fixture
def operator_process(cluster: LocalCluster, tmp_path: Path) -> Iterator[Callable[[], Component]]:
    started: list[Component] = []

    push = free_port()  # the same across restarts: KEDA keeps dialling one address

    def start() -> Component:
        operator = start_operator(
            cluster,
            tmp_path,
            USERSESSION_POLL_INTERVAL="1",
            USERSESSION_PUSH_PORT=str(push),
            USERSESSION_PUSH_ADDRESS=f"127.0.0.1:{push}",
        )
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop()


def test_operator_and_keda_restarted_midway_lose_nothing(
    api: Api,
    session_namespace: str,
    rds: redis.Redis,
    cluster: LocalCluster,
    operator_process: Callable[[], Component],
) -> None:
    operator = operator_process()
    ns, name = session_namespace, unique()
    api.create(ns, name, scaling=FAST_SCALING)
    queue = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]

    cluster.stop_keda()
    try:
        rds.lpush(queue, "first", "second")
        # The operator still sees the queue; with KEDA away nothing scales.
        api.wait_status(ns, name, lambda s: s.get("queueDepth") == 2)
        time.sleep(3 * FAST_SCALING["pollingIntervalSeconds"])
        assert api.replicas(ns, name) == 0
    finally:
        cluster.start_keda()
    api.wait_replicas(ns, name, 1, timeout=30)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running")

    operator.stop()
    assert rds.rpop(queue) == "first"  # handled while the operator is away
    operator = operator_process()
    status = api.wait_status(
        ns, name, lambda s: s.get("queueDepth") == 1 and s.get("phase") == "Running"
    )
    assert api.replicas(ns, name) == 1, "the restarted operator touched replicas"

    assert rds.rpop(queue) == "second"
    assert rds.llen(queue) == 0
    api.wait_replicas(ns, name, 0, timeout=30)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert status["queueDepth"] == 0


def test_with_the_operator_down_sessions_still_wake_through_kedas_own_poll(
    api: Api,
    session_namespace: str,
    rds: redis.Redis,
    operator_process: Callable[[], Component],
) -> None:
    """The fast path may only add speed: without it, the redis triggers still work."""
    operator = operator_process()
    ns, name = session_namespace, unique()
    api.create(ns, name, scaling={"pollingIntervalSeconds": 2, "idleTimeoutSeconds": 5})
    queue = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["redis", "redis", "external-push"]

    operator.stop()
    rds.lpush(queue, '{"type": "wake"}')
    api.wait_replicas(ns, name, 1, timeout=20)  # KEDA polled the list itself

    operator_process()
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running" and s.get("queueDepth") == 1)
