"""Operators as separate processes (the real CLI), for tests and benchmarks that run several
at once and kill them: kopf's in-process runner allows one, and a thread cannot be SIGKILLed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from support.sessions import operator_metric
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port
from usersession_localstack.process import spawn

OPERATOR = Path(sys.executable).with_name("usersession-operator")


@dataclass
class OperatorProcess:
    name: str  # its identity in the Lease (POD_NAME)
    process: subprocess.Popen[bytes]
    log_path: Path
    metrics_port: int
    liveness_port: int
    lease: str = field(default="")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def leader_metric(self) -> float | None:
        """usersession_leader as it serves it; None while it serves no metrics."""
        try:
            return operator_metric(self.metrics_port, "usersession_leader")
        except (OSError, urllib.error.URLError):
            return None

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


def start_operator(
    cluster: LocalCluster,
    name: str,
    log_dir: Path,
    *,
    lease: str,
    lease_namespace: str,
    namespaces: tuple[str, ...],
    kubeconfig: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> OperatorProcess:
    """`usersession-operator run` with leader election on, its own ports and identity;
    `env` adds or overrides variables."""
    metrics_port, liveness_port = free_port(), free_port()
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig or cluster.kubeconfig),
        "POD_NAME": name,
        "USERSESSION_LEADER_ELECTION": "on",
        "USERSESSION_LEADER_ELECTION_LEASE": lease,
        "USERSESSION_LEADER_ELECTION_NAMESPACE": lease_namespace,
        "USERSESSION_NAMESPACES": ",".join(namespaces),
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_POLL_INTERVAL": "1",
        "USERSESSION_LISTEN_HOST": "127.0.0.1",
        "USERSESSION_METRICS_PORT": str(metrics_port),
        "USERSESSION_LIVENESS_PORT": str(liveness_port),
        "USERSESSION_PUSH_PORT": "0",
        **(env or {}),
    }
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:  # a restarted replica adds to its log
        process = spawn(
            [str(OPERATOR), "run"],  # exec'd by setpriv: the pid is the operator's
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return OperatorProcess(name, process, log_path, metrics_port, liveness_port, lease)


@contextlib.contextmanager
def operators() -> Iterator[list[OperatorProcess]]:
    """A list to start operators into; whatever still runs at the end is killed."""
    started: list[OperatorProcess] = []
    try:
        yield started
    finally:
        for op in started:
            if op.process.poll() is None:
                op.signal(signal.SIGKILL)
                op.wait(10)


def lease_spec(api_client: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Lease's spec as the API server has it, None if there is none."""
    coordination = client.CoordinationV1Api(api_client)
    try:
        response: Any = coordination.read_namespaced_lease(name, namespace, _preload_content=False)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    spec: dict[str, Any] = json.loads(response.data).get("spec") or {}
    return spec


def holder(api_client: client.ApiClient, namespace: str, name: str) -> str:
    return str((lease_spec(api_client, namespace, name) or {}).get("holderIdentity") or "")


def logs(*ops: OperatorProcess) -> str:
    """Every operator's log, for an assertion message."""
    return "\n".join(f"--- {op.name} ---\n{op.log()[-6000:]}" for op in ops)


def push_env(service: str, namespace: str, pod_ip: str) -> dict[str, str]:
    """An operator's settings for serving the push port and, once it leads, publishing
    itself as `service`'s endpoint with address `pod_ip`, as the chart sets them."""
    return {
        "USERSESSION_PUSH_PORT": str(free_port()),
        "USERSESSION_PUSH_ENDPOINTS_SERVICE": service,
        "POD_NAMESPACE": namespace,
        "POD_IP": pod_ip,
    }


def push_endpoint(
    api_client: client.ApiClient, namespace: str, name: str
) -> tuple[list[str], list[int]] | None:
    """The EndpointSlice `name`'s addresses and ports; None if there is none."""
    discovery = client.DiscoveryV1Api(api_client)
    try:
        response: Any = discovery.read_namespaced_endpoint_slice(
            name, namespace, _preload_content=False
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    body = json.loads(response.data)
    addresses = [a for e in body.get("endpoints") or () for a in e.get("addresses") or ()]
    return addresses, [p["port"] for p in body.get("ports") or ()]
