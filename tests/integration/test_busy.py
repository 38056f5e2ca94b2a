"""Busy means busy: a session never sleeps while its worker holds a message.

The real KEDA scales; the reference worker runs as a process for each Running
pod of the test's namespace (the local stack's PodRunner, as in the main job).
Sessions poll every second and may sleep after five idle seconds.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kubernetes import client

from support.sessions import FAST_SCALING, Api, unique
from usersession_localstack.loopback import wait_for
from usersession_localstack.pods import PodRunner
from usersession_operator.session.keys import processing_key
from usersession_operator.session.messages import Message

pytestmark = pytest.mark.usefixtures("operator")

IDLE = FAST_SCALING["idleTimeoutSeconds"]


@pytest.fixture
def workers(
    api_client: client.ApiClient, session_namespace: str, tmp_path: Path
) -> Iterator[PodRunner]:
    runner = PodRunner(api_client, tmp_path, namespace=session_namespace).start()
    yield runner
    runner.stop()


def _session(api: Api, ns: str, work_seconds: float, grace: int = 30) -> tuple[str, str]:
    name = unique()
    api.create(
        ns,
        name,
        scaling=FAST_SCALING,
        workload={
            "image": "registry.example.com/session-worker:0.1.0",
            "env": [{"name": "WORKER_WORK_SECONDS", "value": str(work_seconds)}],
            "terminationGracePeriodSeconds": grace,
        },
    )
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    return name, status["queueName"]


class ReplicaLog:
    """Every replica count the Deployment had, sampled until stopped."""

    def __init__(self, api: Api, ns: str, name: str) -> None:
        self.seen: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(api, ns, name), daemon=True)
        self._thread.start()

    def _run(self, api: Api, ns: str, name: str) -> None:
        while not self._stop.wait(0.2):
            self.seen.append((time.monotonic(), api.replicas(ns, name)))

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.seen


def _reply(rds: redis.Redis, message: Message, timeout: float) -> dict[str, Any]:
    assert message.reply_to is not None
    popped = rds.brpop([message.reply_to], timeout=timeout)
    assert popped is not None, f"no reply to {message.id} within {timeout}s"
    return dict(json.loads(popped[1]))


def test_a_task_three_times_longer_than_the_idle_timeout_completes(
    api: Api,
    session_namespace: str,
    rds: redis.Redis,
    workers: PodRunner,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ns = session_namespace
    name, queue = _session(api, ns, work_seconds=3 * IDLE)
    message = Message.chat(queue, "a long task")
    rds.lpush(queue, message.encode())
    api.wait_replicas(ns, name, 1, timeout=20)
    # The worker took it: the queue is empty while the work goes on.
    wait_for(lambda: rds.llen(processing_key(queue)) == 1 and rds.llen(queue) == 0, 20)
    status = api.wait_status(ns, name, lambda s: s.get("processingDepth") == 1)
    assert status["phase"] == "Running"
    pod = status["pod"]["name"]

    replicas = ReplicaLog(api, ns, name)
    reply = _reply(rds, message, timeout=3 * IDLE + 30)
    finished = time.monotonic()
    during = replicas.stop()
    assert reply["text"] == "echo: a long task"
    assert {n for _, n in during if _ < finished} == {1}, "scaled down mid-task"
    assert api.session(ns, name)["status"]["pod"]["name"] == pod  # type: ignore[index]

    # Idle from now on: asleep after the idle timeout plus at most a poll or two.
    api.wait_replicas(ns, name, 0, timeout=IDLE + 20)
    asleep_after = time.monotonic() - finished
    with capsys.disabled():  # a measurement worth seeing in every run's output
        print(f"\nlast message finished -> replicas 0: {asleep_after:.1f}s (idle timeout {IDLE}s)")
    assert asleep_after >= IDLE - 1


def test_a_worker_killed_mid_task_is_replaced_and_the_message_handled_exactly_once_more(
    api: Api, session_namespace: str, rds: redis.Redis, workers: PodRunner
) -> None:
    ns = session_namespace
    _name, queue = _session(api, ns, work_seconds=4)
    message = Message.chat(queue, "survive me")
    rds.lpush(queue, message.encode())
    wait_for(lambda: rds.llen(processing_key(queue)) == 1, 30)
    (key, process), *_ = workers.processes.items()
    # Mid-task, with no chance to finish or clean up; and the pod is force-deleted
    # at once too (as in an eviction), so no replacement worker overlaps with it.
    os.killpg(process.pid, signal.SIGKILL)
    api.core.delete_namespaced_pod(key[1], ns, grace_period_seconds=0)

    # The message in flight keeps the session up (a new pod) and is handled again.
    reply = _reply(rds, message, timeout=60)
    assert reply["id"] == message.id
    assert rds.llen(processing_key(queue)) == 0
    time.sleep(2)
    assert message.reply_to is not None
    assert rds.llen(message.reply_to) == 0, "handled more than once more"


def test_a_message_stranded_in_flight_wakes_a_sleeping_session(
    api: Api, session_namespace: str, rds: redis.Redis, workers: PodRunner
) -> None:
    ns = session_namespace
    name, queue = _session(api, ns, work_seconds=0)
    # What a pod that died mid-message leaves behind, with the queue itself empty.
    message = Message.chat(queue, "left behind")
    rds.lpush(processing_key(queue), message.encode())
    api.wait_replicas(ns, name, 1, timeout=20)
    assert _reply(rds, message, timeout=30)["text"] == "echo: left behind"
    api.wait_replicas(ns, name, 0, timeout=IDLE + 20)
