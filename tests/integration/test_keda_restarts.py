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

from support.sessions import FAST_SCALING, SLOW_KEDA, Api, operator_metric, unique
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for
from usersession_localstack.process import Component
from usersession_localstack.stack import start_operator

Start = Callable[..., Component]


@pytest.fixture
def operator_process(cluster: LocalCluster, tmp_path: Path) -> Iterator[Start]:
    """Starts the operator; keyword USERSESSION_* settings override the defaults."""
    started: list[Component] = []

    push = free_port()  # the same across restarts: KEDA keeps dialling one address

    def start(**settings: str) -> Component:
        operator = start_operator(
            cluster,
            tmp_path,
            **{
                "USERSESSION_POLL_INTERVAL": "1",
                "USERSESSION_PUSH_PORT": str(push),
                "USERSESSION_PUSH_ADDRESS": f"127.0.0.1:{push}",
                **settings,
            },
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
    operator_process: Start,
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
    operator_process: Start,
) -> None:
    """The fast path may only add speed: without it, the redis triggers still work."""
    operator = operator_process()
    ns, name = session_namespace, unique()
    api.create(ns, name, scaling={"pollingIntervalSeconds": 2, "idleTimeoutSeconds": 5})
    queue = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None
    assert [t["type"] for t in scaled["spec"]["triggers"]] == ["redis", "external-push"]

    operator.stop()
    rds.lpush(queue, '{"type": "wake"}')
    api.wait_replicas(ns, name, 1, timeout=20)  # KEDA polled the list itself

    operator_process()
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running" and s.get("queueDepth") == 1)


def test_the_tls_fast_path_reconnects_after_the_operator_restarts(
    api: Api,
    session_namespace: str,
    rds: redis.Redis,
    cluster: LocalCluster,
    operator_process: Start,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """KEDA polls these lists every 300 s, so a wake in seconds is the push path,
    here over TLS (KEDA trusts the stack's CA through its --ca-dir)."""
    tls = {"USERSESSION_PUSH_TLS_DIR": str(cluster.pki.push_tls_dir)}
    metrics = free_port()
    operator = operator_process(USERSESSION_METRICS_PORT=str(metrics), **tls)
    ns = session_namespace
    before, after = (api.create_sleeping(ns, unique(), SLOW_KEDA) for _ in range(2))
    scaled = api.child("ScaledObject", ns, before[0])
    assert scaled is not None
    assert scaled["spec"]["triggers"][1]["metadata"]["enableTLS"] == "true"

    def connected(port: int) -> bool:
        return operator_metric(port, "usersession_push_streams") >= 2

    wait_for(lambda: connected(metrics), 60)
    # Any wake well inside KEDA's 300 s poll is the push path; the bound leaves a
    # loaded machine room (the time taken is printed, not asserted).
    push_bound = 60
    rds.lpush(before[1], '{"type": "wake"}')
    api.wait_replicas(ns, before[0], 1, timeout=push_bound)

    operator.stop()
    stopped = time.monotonic()
    metrics = free_port()
    operator_process(USERSESSION_METRICS_PORT=str(metrics), **tls)
    restarted = time.monotonic() - stopped
    # KEDA redials with a backoff of its own (2 s, doubling to a minute).
    wait_for(lambda: connected(metrics), 120)
    reconnected = time.monotonic() - stopped
    started = time.monotonic()
    rds.lpush(after[1], '{"type": "wake"}')
    api.wait_replicas(ns, after[0], 1, timeout=push_bound)
    took = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\noperator restarted in {restarted:.1f} s; KEDA's streams back"
            f" {reconnected:.1f} s after the stop; then a wake over TLS took {took:.2f} s"
        )
