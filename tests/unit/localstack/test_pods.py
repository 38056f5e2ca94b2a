"""The pod runner restarts a worker whose pod still runs, like a kubelet, through an
API server that is down for a moment."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client

from usersession_localstack.loopback import wait_for
from usersession_localstack.pods import PodRunner
from usersession_localstack.process import stop_processes


class FlakyCore:
    """Secrets read from a dict; the first `down` reads fail as a restarting API server's."""

    def __init__(self, down: int) -> None:
        self.down = down
        self.reads = 0

    def read_namespaced_secret(self, name: str, namespace: str) -> client.V1Secret:
        self.reads += 1
        if self.reads <= self.down:
            raise urllib3.exceptions.MaxRetryError(None, "/api", reason=None)  # type: ignore[arg-type]
        return client.V1Secret(data={"password": base64.b64encode(b"pw").decode()})


def pod() -> Any:
    env = [  # no SESSION_QUEUE: the worker exits at once, and the runner must restart it
        client.V1EnvVar(
            name="REDIS_PASSWORD",
            value_from=client.V1EnvVarSource(
                secret_key_ref=client.V1SecretKeySelector(name="redis-auth", key="password")
            ),
        ),
    ]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="s-1-a", namespace="ns"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="worker", env=env)]),
        status=client.V1PodStatus(phase="Running"),
    )


def test_a_worker_is_restarted_once_the_api_server_answers_again(tmp_path: Path) -> None:
    runner = PodRunner(client.ApiClient(client.Configuration()), tmp_path)
    core = FlakyCore(down=0)
    runner.core = core  # type: ignore[assignment]
    key = ("ns", "s-1-a")
    runner._running_pods[key] = pod()
    exited = runner._spawn(pod())
    runner.processes[key] = exited
    exited.wait(30)
    core.down = core.reads + 2  # the API server restarts just as the worker exited
    restarter = threading.Thread(target=runner._restart_exited, daemon=True)
    restarter.start()
    try:
        wait_for(lambda: runner.processes[key] is not exited, timeout=20)
        assert core.reads >= 4  # the first start, two failed reads, then the restart
        assert restarter.is_alive(), "the restarter died with the API server's error"
    finally:
        runner._stopping.set()
        time.sleep(1.1)
        stop_processes(list(runner.processes.values()), grace=0)
