"""Fast wake: the operator tells KEDA at once (external-push), KEDA still does the scaling.

Sessions here let KEDA poll their lists only every 300 s, and the operator polls
every 10 s, so a wake within a few seconds can only come through keyspace
notifications and the push path; with notifications off it comes through the
operator's poll.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import redis

from support.sessions import SLOW_KEDA, Api, operator_metric, unique
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for

pytestmark = pytest.mark.usefixtures("operator")

OPERATOR_ENV = {"USERSESSION_POLL_INTERVAL": "10"}


def _sleeping(api: Api, ns: str) -> tuple[str, str]:
    return api.create_sleeping(ns, unique(), SLOW_KEDA)


def _wake(api: Api, rds: redis.Redis, ns: str, name: str, queue: str, timeout: float) -> float:
    started = time.monotonic()
    rds.lpush(queue, '{"type": "wake"}')
    api.wait_replicas(ns, name, 1, timeout=timeout)
    return time.monotonic() - started


def _metric(name: str) -> float:
    return operator_metric(os.environ["USERSESSION_METRICS_PORT"], name)


def test_work_wakes_a_session_in_about_a_second_through_the_push_path(
    api: Api, session_namespace: str, rds: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = session_namespace
    sessions = [_sleeping(api, ns) for _ in range(3)]  # the operator is up and serving by now
    wakes_before = _metric("usersession_wake_duration_seconds_count")
    timings = []
    for name, queue in sessions:
        timings.append(_wake(api, rds, ns, name, queue, timeout=5))
        status = api.wait_status(ns, name, lambda s: s.get("phase") == "Running", timeout=10)
        assert 0 < status["lastWakeSeconds"] < 10, status
    with capsys.disabled():
        print(f"\nLPUSH -> replicas 1 through the push path: {[round(t, 2) for t in timings]} s")
    wait_for(lambda: _metric("usersession_wake_duration_seconds_count") >= wakes_before + 3, 10)


def test_status_shows_a_new_message_within_a_second_or_two(
    api: Api, session_namespace: str, rds: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = session_namespace
    name, queue = _sleeping(api, ns)
    rds.lpush(f"{queue}:processing", "x")  # in flight only: awake, but nothing to wait on
    api.wait_status(ns, name, lambda s: s.get("processingDepth") == 1, timeout=15)
    started = time.monotonic()
    rds.lpush(queue, "m1", "m2")
    # Typically under a second (one status write a second per session at most);
    # the bound stays below the operator's 10 s poll with room for a loaded machine.
    api.wait_status(ns, name, lambda s: s.get("queueDepth") == 2, timeout=8)
    with capsys.disabled():
        print(f"\nLPUSH -> status.queueDepth: {time.monotonic() - started:.2f} s")


@pytest.mark.usefixtures("notifications_off")
def test_without_keyspace_notifications_the_operators_poll_still_pushes(
    api: Api, session_namespace: str, rds: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = session_namespace
    name, queue = _sleeping(api, ns)
    # Within the operator's 10 s poll, far sooner than KEDA's own 300 s one.
    took = _wake(api, rds, ns, name, queue, timeout=20)
    with capsys.disabled():
        print(f"\nLPUSH -> replicas 1 with notifications off: {took:.2f} s")


def test_the_fast_path_comes_back_after_redis_restarts(
    api: Api, session_namespace: str, rds: redis.Redis, cluster: LocalCluster
) -> None:
    ns = session_namespace
    name, queue = _sleeping(api, ns)
    cluster.stop_redis()
    cluster.start_redis()

    def reachable(s: dict[str, Any]) -> bool:
        return any(c["type"] == "RedisReachable" and c["status"] == "True" for c in s["conditions"])

    api.wait_status(ns, name, reachable, timeout=30)
    time.sleep(8)  # the listener's reconnect backoff (1, 2, 4 s) has run out by now
    _wake(api, rds, ns, name, queue, timeout=5)
