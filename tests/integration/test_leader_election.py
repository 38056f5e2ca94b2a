"""Two operator replicas through a Lease, and operators sharded by namespace.

Real processes (the `usersession-operator` CLI) against the real API server and
Redis: the standby must write nothing, a killed or stopped leader must be replaced
and status updates resume (the push Service's endpoint following the leader), and
shards on disjoint namespaces must both act, each on its own sessions only.
Takeover times are printed, not asserted (the benchmark
tests/benchmarks/bench_failover.py measures them); the timeouts here are generous.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kubernetes import client

from support.chart import RELEASE_NAMESPACE, ensure_namespace, service_account_kubeconfig
from support.namespaces import fresh_namespace
from support.operators import (
    OperatorProcess,
    holder,
    lease_spec,
    logs,
    operators,
    push_endpoint,
    push_env,
    start_operator,
)
from support.sessions import Api
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.builders import DEPLOYMENT
from usersession_operator.leadership.lease import LEASE_SECONDS, micro_time

# Well above a takeover (a lease, a renew period, kopf's start) on a busy machine.
TAKEOVER_TIMEOUT = 60


@pytest.fixture
def lease() -> str:
    return f"uso-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def chart_kubeconfig(
    cluster: LocalCluster, tmp_path: Path, lease: str, session_namespace: str
) -> Path:
    """The chart's ServiceAccount with the chart's RBAC for this test's Lease and
    namespace, as one shard of a sharded install: the test then also proves the
    chart grants what an elected, namespaced operator needs."""
    return service_account_kubeconfig(
        cluster,
        tmp_path / "kubeconfig",
        "--set",
        f"leaderElection.leaseName={lease}",
        "--set",
        f"watchNamespaces[0]={session_namespace}",
    )


def wait_for_leader(
    api_client: client.ApiClient, lease: str, candidates: list[OperatorProcess]
) -> tuple[OperatorProcess, list[OperatorProcess]]:
    """The one candidate holding the Lease and saying so in its metric, and the others,
    once each of them says it is a standby."""

    def settled() -> OperatorProcess | None:
        name = holder(api_client, RELEASE_NAMESPACE, lease)
        metric = {op.name: op.leader_metric() for op in candidates}
        others = [v for k, v in metric.items() if k != name]
        if metric.get(name) == 1 and all(v == 0 for v in others):
            return next(op for op in candidates if op.name == name)
        return None

    try:
        leader = wait_for(settled, TAKEOVER_TIMEOUT)
    except TimeoutError:
        raise AssertionError("no single leader\n" + logs(*candidates)) from None
    return leader, [op for op in candidates if op is not leader]


def says_standby(op: OperatorProcess, lease: str, held_by: str) -> bool:
    return f"waiting for the lease {RELEASE_NAMESPACE}/{lease} held by {held_by}" in op.log()


class HeldLease:
    """This test as the current leader: a real Lease it creates and renews, as another
    replica would, until it releases it."""

    def __init__(self, api_client: client.ApiClient, name: str, identity: str) -> None:
        self.api = client.CoordinationV1Api(api_client)
        self.name, self.identity = name, identity
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_forever, daemon=True)

    def _spec(self, holder: str | None) -> dict[str, object]:
        now = micro_time(dt.datetime.now(dt.UTC))
        return {
            "holderIdentity": holder,
            "leaseDurationSeconds": LEASE_SECONDS,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        }

    def __enter__(self) -> HeldLease:
        body = {"metadata": {"name": self.name}, "spec": self._spec(self.identity)}
        self.api.create_namespaced_lease(RELEASE_NAMESPACE, body)
        self._thread.start()
        return self

    def _renew_forever(self) -> None:
        while not self._stop.wait(1):
            lease = self.api.read_namespaced_lease(self.name, RELEASE_NAMESPACE)
            body = {
                "metadata": {"name": self.name, "resourceVersion": lease.metadata.resource_version},
                "spec": self._spec(self.identity),
            }
            self.api.replace_namespaced_lease(self.name, RELEASE_NAMESPACE, body)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        lease = self.api.read_namespaced_lease(self.name, RELEASE_NAMESPACE)
        body = {
            "metadata": {"name": self.name, "resourceVersion": lease.metadata.resource_version},
            "spec": self._spec(None),
        }
        self.api.replace_namespaced_lease(self.name, RELEASE_NAMESPACE, body)

    def __exit__(self, *_: object) -> None:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()


@pytest.fixture
def release_namespace(cluster: LocalCluster) -> str:
    ensure_namespace(cluster, RELEASE_NAMESPACE)
    return RELEASE_NAMESPACE


def test_a_standby_writes_nothing_until_the_lease_is_free(
    cluster: LocalCluster,
    api_client: client.ApiClient,
    api: Api,
    session_namespace: str,
    release_namespace: str,
    lease: str,
    chart_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    with HeldLease(api_client, lease, "someone-else") as held, operators() as started:
        op = start_operator(
            cluster,
            "standby-1",
            tmp_path,
            lease=lease,
            lease_namespace=release_namespace,
            namespaces=(session_namespace,),
            kubeconfig=chart_kubeconfig,
        )
        started.append(op)
        try:
            wait_for(lambda: says_standby(op, lease, "someone-else"), TAKEOVER_TIMEOUT)
        except TimeoutError:
            raise AssertionError(logs(op)) from None
        # Alive for the kubelet, and honest about being a standby.
        assert op.healthy(), logs(op)
        assert op.leader_metric() == 0
        created = api.create(session_namespace, "quiet")
        # Five polls' worth of time: an operator that acted would have added its
        # finalizer, children and status by now (test_handlers shows it does in less).
        time.sleep(5)
        now = api.session(session_namespace, "quiet")
        assert now is not None
        assert now["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"], (
            "the standby wrote to the session:\n" + logs(op)
        )
        assert "status" not in now
        assert api.child(DEPLOYMENT.kind, session_namespace, "quiet") is None
        assert holder(api_client, release_namespace, lease) == "someone-else"

        held.release()
        started_at = time.monotonic()
        status = api.wait_status(
            session_namespace, "quiet", lambda s: "queueName" in s, timeout=TAKEOVER_TIMEOUT
        )
        print(f"\nreleased lease -> status written: {time.monotonic() - started_at:.1f} s")
        assert status["queueName"]
        spec = lease_spec(api_client, release_namespace, lease) or {}
        assert spec["holderIdentity"] == "standby-1"
        assert spec["leaseTransitions"] == 1
        assert op.leader_metric() == 1
        # The standby's health endpoint gave its port over to kopf's.
        wait_for(op.healthy, 30)


def test_a_stopped_or_killed_leader_is_replaced_and_status_updates_resume(
    cluster: LocalCluster,
    api_client: client.ApiClient,
    api: Api,
    rds: redis.Redis,
    session_namespace: str,
    release_namespace: str,
    lease: str,
    chart_kubeconfig: Path,
    push_service: str,
    tmp_path: Path,
) -> None:
    # Each replica with its own pod IP (documentation addresses: the API server
    # refuses loopback ones in an EndpointSlice), to see the push endpoint follow.
    pod_ips = {"a": "192.0.2.1", "b": "192.0.2.2", "c": "192.0.2.3"}

    def start(name: str) -> OperatorProcess:
        op = start_operator(
            cluster,
            name,
            tmp_path,
            lease=lease,
            lease_namespace=release_namespace,
            namespaces=(session_namespace,),
            kubeconfig=chart_kubeconfig,
            env=push_env(push_service, release_namespace, pod_ips[name]),
        )
        started.append(op)
        return op

    def push_routes_to(op: OperatorProcess) -> None:
        """The push Service's only endpoint is `op` (the leader), and only it."""

        def addresses() -> list[str] | None:
            found = push_endpoint(api_client, release_namespace, push_service)
            return found[0] if found else None

        try:
            wait_for(lambda: addresses() == [pod_ips[op.name]], TAKEOVER_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"{addresses()}\n" + logs(*started)) from None

    def depth_reaches(depth: int, since: float, what: str) -> None:
        status = api.wait_status(
            session_namespace,
            "s",
            lambda s: s.get("queueDepth") == depth,
            timeout=TAKEOVER_TIMEOUT,
        )
        assert status["queueDepth"] == depth, logs(*started)
        print(f"\n{what}: status.queueDepth current again after {time.monotonic() - since:.1f} s")

    def takeover(by: OperatorProcess, since: float, what: str) -> None:
        try:
            wait_for(
                lambda: holder(api_client, release_namespace, lease) == by.name, TAKEOVER_TIMEOUT
            )
        except TimeoutError:
            raise AssertionError(logs(*started)) from None
        print(f"\n{what}: {by.name} holds the lease after {time.monotonic() - since:.1f} s")

    with operators() as started:
        leader, [standby] = wait_for_leader(api_client, lease, [start("a"), start("b")])
        wait_for(lambda: says_standby(standby, lease, leader.name), 10)
        assert standby.healthy(), logs(standby)
        push_routes_to(leader)
        api.create(session_namespace, "s")
        queue = api.wait_status(
            session_namespace, "s", lambda s: "queueName" in s, timeout=TAKEOVER_TIMEOUT
        )["queueName"]

        # Graceful: SIGTERM, and the leader releases the Lease on its way out.
        since = time.monotonic()
        leader.signal(signal.SIGTERM)
        takeover(standby, since, "SIGTERM")
        # Only now: the stopping leader polls until its cleanup (which stops the
        # poller, then releases the Lease) and could have written this depth itself.
        rds.lpush(queue, "one")
        depth_reaches(1, since, "SIGTERM")
        assert leader.wait(30) == 0, logs(leader)
        assert "Released the lease" in leader.log(), logs(leader)
        # The old leader removed its endpoint before releasing; the new one wrote its own.
        assert "Removed this replica from the push Service" in leader.log(), logs(leader)
        push_routes_to(standby)

        # A crash: SIGKILL, no release; the standby waits out the lease.
        leader, standby = standby, start("c")
        wait_for(lambda: says_standby(standby, lease, leader.name), TAKEOVER_TIMEOUT)
        assert standby.leader_metric() == 0
        since = time.monotonic()
        leader.signal(signal.SIGKILL)
        assert leader.wait(10) == -signal.SIGKILL
        rds.lpush(queue, "two")
        takeover(standby, since, "SIGKILL")
        depth_reaches(2, since, "SIGKILL")
        push_routes_to(standby)  # over the endpoint the killed leader could not remove
        assert (lease_spec(api_client, release_namespace, lease) or {})["leaseTransitions"] == 2


@pytest.fixture
def two_session_namespaces(
    cluster: LocalCluster, api_client: client.ApiClient
) -> Iterator[tuple[str, str]]:
    with (
        fresh_namespace(api_client, "shard-a", cluster.redis_password) as a,
        fresh_namespace(api_client, "shard-b", cluster.redis_password) as b,
    ):
        yield a, b


def test_shards_on_disjoint_namespaces_both_act_each_on_its_own_sessions(
    cluster: LocalCluster,
    api_client: client.ApiClient,
    api: Api,
    rds: redis.Redis,
    two_session_namespaces: tuple[str, str],
    release_namespace: str,
    tmp_path: Path,
) -> None:
    ns_a, ns_b = two_session_namespaces
    lease_a, lease_b = (f"uso-shard-{uuid.uuid4().hex[:8]}" for _ in range(2))

    def shard(name: str, lease: str, namespace: str) -> OperatorProcess:
        op = start_operator(
            cluster,
            name,
            tmp_path,
            lease=lease,
            lease_namespace=release_namespace,
            namespaces=(namespace,),
        )
        started.append(op)
        return op

    with operators() as started:
        a = shard("shard-a-0", lease_a, ns_a)
        wait_for_leader(api_client, lease_a, [a])
        api.create(ns_a, "mine")
        api.create(ns_b, "theirs")
        api.wait_status(ns_a, "mine", lambda s: "queueName" in s, timeout=TAKEOVER_TIMEOUT)
        # Shard a has had time to act on everything it sees; it must not see ns_b.
        time.sleep(3)
        theirs = api.session(ns_b, "theirs") or {}
        assert "status" not in theirs, "shard a reconciled another shard's session"
        assert not theirs["metadata"].get("finalizers"), logs(a)

        b = shard("shard-b-0", lease_b, ns_b)
        wait_for_leader(api_client, lease_b, [b])
        queue_b = api.wait_status(
            ns_b, "theirs", lambda s: "queueName" in s, timeout=TAKEOVER_TIMEOUT
        )["queueName"]
        # Both leading at once, each through its own Lease.
        assert (a.leader_metric(), b.leader_metric()) == (1, 1)
        assert holder(api_client, release_namespace, lease_a) == a.name
        assert holder(api_client, release_namespace, lease_b) == b.name
        queue_a = (api.session(ns_a, "mine") or {})["status"]["queueName"]
        rds.lpush(queue_a, "x")
        rds.lpush(queue_b, "y", "z")
        api.wait_status(ns_a, "mine", lambda s: s.get("queueDepth") == 1, timeout=30)
        api.wait_status(ns_b, "theirs", lambda s: s.get("queueDepth") == 2, timeout=30)
