"""Benchmark: how long two elected replicas take to hand over, stopped or killed.

Run: .venv/bin/python tests/benchmarks/bench_failover.py [--repeats 3]

Starts its own local stack and two `usersession-operator run` processes with
leader election on, one session, then --repeats times for each way of losing the
leader: SIGTERM (it releases the Lease on its way out) and SIGKILL (the standby
waits the Lease out). Each time it measures, from the signal, the standby holding
the Lease and status.queueDepth showing a message pushed as it took over (not
earlier: a stopping leader polls until its cleanup, and could write that itself);
then starts a fresh standby in place of the one that left. Prints each time, and
median and max beside the lease's timings; asserts nothing.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
import stack
from kubernetes import client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.*

from support.operators import OperatorProcess, holder, start_operator
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.leadership.lease import (
    LEASE_SECONDS,
    RENEW_DEADLINE_SECONDS,
    RENEW_EVERY_SECONDS,
)
from usersession_operator.session.model import GROUP, PLURAL, VERSION

LEASE_NAMESPACE, LEASE = "default", "bench-failover"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, list[tuple[float, float]]] = {"SIGTERM": [], "SIGKILL": []}
    with LocalCluster() as cluster, tempfile.TemporaryDirectory() as logs:
        api_client = stack.api_client(cluster)
        custom = client.CustomObjectsApi(api_client)
        rds = redis.Redis(
            host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
        )
        ns = stack.namespace(cluster)
        started: list[OperatorProcess] = []

        def start() -> OperatorProcess:
            op = start_operator(
                cluster,
                f"replica-{len(started)}",
                Path(logs),
                lease=LEASE,
                lease_namespace=LEASE_NAMESPACE,
                namespaces=(ns,),
            )
            started.append(op)
            return op

        def status() -> dict[str, object]:
            obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "s")
            return dict(obj.get("status") or {})

        def holds(op: OperatorProcess) -> bool:
            return holder(api_client, LEASE_NAMESPACE, LEASE) == op.name

        def standby_ready(op: OperatorProcess) -> bool:
            return op.leader_metric() == 0 and "Standby: waiting" in op.log()

        try:
            first, second = start(), start()
            wait_for(
                lambda: holder(api_client, LEASE_NAMESPACE, LEASE) in ("replica-0", "replica-1"), 60
            )
            leader, standby = (
                (first, second)
                if holder(api_client, LEASE_NAMESPACE, LEASE) == first.name
                else (second, first)
            )
            custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "UserSession",
                    "metadata": {"name": "s"},
                    "spec": {"userId": "bench", "workload": {"image": "example.com/worker:1"}},
                },
            )
            queue = str(wait_for(lambda: status().get("queueName"), 60))
            for case in ["SIGTERM", "SIGKILL"] * args.repeats:
                wait_for(lambda op=standby: standby_ready(op), 60)
                since = time.monotonic()
                leader.signal(signal.SIGTERM if case == "SIGTERM" else signal.SIGKILL)
                wait_for(lambda op=standby: holds(op), 60)
                took_lease = time.monotonic() - since
                # Pushed only now: a stopping leader polls until its cleanup, which
                # stops the poller before it releases the Lease.
                depth = int(rds.lpush(queue, case))
                wait_for(lambda n=depth: status().get("queueDepth") == n, 60)
                resumed = time.monotonic() - since
                leader.wait(30)
                results[case].append((took_lease, resumed))
                print(f"{case}: lease taken {took_lease:.1f} s, status current {resumed:.1f} s")
                leader, standby = standby, start()
        finally:
            for op in started:
                if op.process.poll() is None:
                    op.signal(signal.SIGKILL)
                    op.wait(10)

    print(
        f"\nlease {LEASE_SECONDS} s, renewed every {RENEW_EVERY_SECONDS:g} s, "
        f"given up after {RENEW_DEADLINE_SECONDS:g} s without renewal"
    )
    print("| leader lost by | new leader holds the Lease (median / max) | status updates again |")
    print("|---|---|---|")
    for case, times in results.items():
        leases, statuses = [t[0] for t in times], [t[1] for t in times]
        print(
            f"| {case} | {statistics.median(leases):.1f} / {max(leases):.1f} s "
            f"| {statistics.median(statuses):.1f} / {max(statuses):.1f} s |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
