"""The faults a chaos run injects, each one as production meets it, all on loopback.

Every fault is undone the way the platform would undo it: a killed operator,
KEDA or worker is started again after a few seconds (the kubelet), a killed
Redis restarts with its append-only file, a paused one resumes, the API server
comes back on the same etcd. The bursts are what users and GitOps do.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import redis
import urllib3
from kubernetes import client

from support.operators import OperatorProcess, holder, start_operator
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port
from usersession_localstack.pods import PodRunner
from usersession_operator.session.keys import processing_key
from usersession_operator.session.model import GROUP, PLURAL, VERSION

T = TypeVar("T")
LEASE = "chaos"
KINDS = (
    "kill_leader",
    "kill_standby",
    "kill_keda",
    "kill_worker",
    "restart_redis",
    "pause_redis",
    "restart_apiserver",
    "burst",
)
# How long a paused Redis answers nothing (the 20 s).
PAUSE_SECONDS = 20.0
# Faults overlap across components, as in production, but two faults never hold
# one component at once (a Redis cannot be killed while it is paused).
COMPONENT = {
    "kill_leader": "operators",
    "kill_standby": "operators",
    "kill_keda": "keda",
    "restart_redis": "redis",
    "pause_redis": "redis",
    "restart_apiserver": "apiserver",
}


@dataclass
class Operators:
    """Two replicas electing a leader, restarted under the same name when killed."""

    cluster: LocalCluster
    log_dir: Path
    push_port: int = field(default_factory=free_port)
    running: dict[str, OperatorProcess] = field(default_factory=dict)

    def start(self, name: str) -> None:
        env = {
            "USERSESSION_PUSH_PORT": str(self.push_port),  # only the leader binds it
            "USERSESSION_PUSH_ADDRESS": f"127.0.0.1:{self.push_port}",
            "USERSESSION_POLL_INTERVAL": "2",
            "USERSESSION_LOG_LEVEL": "INFO",
        }
        self.running[name] = start_operator(
            self.cluster,
            name,
            self.log_dir,
            lease=LEASE,
            lease_namespace="default",
            namespaces=(),
            env=env,
        )

    def leader(self, api_client: client.ApiClient) -> str:
        return persist(lambda: holder(api_client, "default", LEASE)) or ""

    def kill(self, name: str) -> None:
        op = self.running.get(name)
        if op is not None and op.process.poll() is None:
            op.signal(signal.SIGKILL)
            op.wait(10)

    def ensure(self) -> list[str]:
        """Start again whichever replica is not running (one that lost its Lease exits
        by itself, status 3, as it should); the names restarted."""
        restarted = []
        for name in ("operator-a", "operator-b"):
            op = self.running.get(name)
            if op is None or op.process.poll() is not None:
                self.start(name)
                restarted.append(name)
        return restarted

    def stop(self) -> None:
        for op in self.running.values():
            if op.process.poll() is None:
                op.signal(signal.SIGTERM)
        for op in self.running.values():
            with contextlib.suppress(Exception):
                op.wait(60)

    def rss_mib(self) -> dict[str, float]:
        found = {}
        for name, op in self.running.items():
            with contextlib.suppress(OSError, StopIteration):
                status = Path(f"/proc/{op.process.pid}/status").read_text()
                rss = next(line for line in status.splitlines() if line.startswith("VmRSS"))
                found[name] = int(rss.split()[1]) / 1024
        return found


class Injector:
    """Injects one fault of a kind and undoes it; each returns a line for the log."""

    def __init__(
        self,
        cluster: LocalCluster,
        operators: Operators,
        runner: PodRunner,
        api_client: client.ApiClient,
        rng: random.Random,
        burst: Callable[[], str],
    ) -> None:
        self.cluster = cluster
        self.operators = operators
        self.runner = runner
        self.api_client = api_client
        self.rng = rng
        self._burst = burst
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)
        # Status lives in the API server: while it restarts, nobody can change it.
        # Wall time it last answered again after a restart; None while it restarts.
        self.apiserver_back_at: float | None = 0.0
        self._locks = {name: threading.Lock() for name in set(COMPONENT.values())}

    def inject(self, kind: str) -> str:
        lock = self._locks.get(COMPONENT.get(kind, ""))
        with lock if lock is not None else contextlib.nullcontext():
            said = getattr(self, kind)()
        self.injected[kind] += 1
        return f"{kind}: {said}"

    def restart_exited_operators(self) -> list[str]:
        """The kubelet's part: a replica that exited (one that lost its Lease exits by
        itself, as it should) is started again, unless a fault is holding it down."""
        lock = self._locks["operators"]
        if not lock.acquire(blocking=False):
            return []
        try:
            return self.operators.ensure()
        finally:
            lock.release()

    def kill_leader(self) -> str:
        name = self.operators.leader(self.api_client)
        self.operators.kill(name)
        time.sleep(self.rng.uniform(1, 5))  # the kubelet's restart
        self.operators.ensure()
        return f"SIGKILL {name or '(no leader)'}"

    def kill_standby(self) -> str:
        leader = self.operators.leader(self.api_client)
        standby = next((n for n in self.operators.running if n != leader), "")
        self.operators.kill(standby)
        time.sleep(self.rng.uniform(1, 5))
        self.operators.ensure()
        return f"SIGKILL {standby}"

    def kill_keda(self) -> str:
        self.cluster.stop_keda(kill=True)
        down = self.rng.uniform(2, 10)
        time.sleep(down)
        self.cluster.start_keda()
        return f"SIGKILL, restarted after {down:.0f} s"

    def kill_worker(self) -> str:
        """A worker with a message in hand: the message must survive. Waits (a minute at
        most) for one, then takes any running worker."""
        deadline = time.monotonic() + 60
        while True:
            running = [(k, p) for k, p in list(self.runner.processes.items()) if p.poll() is None]
            busy = [(k, p) for k, p in running if self._in_flight(k)]
            if busy or (running and time.monotonic() > deadline):
                break
            if time.monotonic() > deadline + 60:
                raise RuntimeError("no worker ran for two minutes")
            time.sleep(0.5)
        key, process = self.rng.choice(busy or running)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        holding = "holding a message" if busy else "idle"
        return f"SIGKILL of the worker of pod {key[0]}/{key[1]} ({holding})"

    def _in_flight(self, pod: tuple[str, str]) -> bool:
        namespace, pod_name = pod
        session = pod_name.rsplit("-", 2)[0]  # <deployment>-<replicaset hash>-<suffix>
        conn = redis.Redis(
            host=self.cluster.redis_host,
            port=self.cluster.redis_port,
            password=self.cluster.redis_password,
            socket_timeout=2,
        )
        try:
            return bool(conn.llen(processing_key(f"usersession:{namespace}:{session}")))
        except redis.RedisError:
            return False
        finally:
            conn.close()

    def restart_redis(self) -> str:
        self.cluster.kill_redis()
        down = self.rng.uniform(1, 5)
        time.sleep(down)
        self.cluster.start_redis()
        return f"SIGKILL, restarted after {down:.0f} s (append-only file kept)"

    def pause_redis(self) -> str:
        self.cluster.pause_redis()
        time.sleep(PAUSE_SECONDS)
        self.cluster.resume_redis()
        return f"answered nothing for {PAUSE_SECONDS:.0f} s (SIGSTOP)"

    def restart_apiserver(self) -> str:
        started = time.monotonic()
        self.apiserver_back_at = None
        try:
            self.cluster.restart_apiserver()
        finally:
            self.apiserver_back_at = time.time()
        return f"SIGKILL, ready again after {time.monotonic() - started:.0f} s"

    def burst(self) -> str:
        return self._burst()


def patch_spec(
    api_client: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]
) -> None:
    client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
    )


def persist(call: Callable[[], T], done_if: int | None = None, timeout: float = 180.0) -> T | None:
    """A call made as a user, a GitOps tool or a fault injector makes it: tried again
    while the API server restarts (faults overlap); None if it answered done_if."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except client.ApiException as exc:
            if exc.status == done_if:
                return None
            if exc.status is not None and exc.status < 500 and exc.status != 429:
                raise
            if time.monotonic() > deadline:
                raise
        except (urllib3.exceptions.HTTPError, OSError):
            if time.monotonic() > deadline:
                raise
        time.sleep(1)
