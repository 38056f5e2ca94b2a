"""Benchmark: how long a sleeping session takes to wake, with the real KEDA.

Run: .venv/bin/python tests/benchmarks/bench_wake.py [--wakes 20] [--background 0]

Starts its own local stack (control plane, Redis with keyspace notifications,
KEDA) and the real operator, and measures side by side in one run:
  redis triggers only  the operator without its push path: KEDA finds the work at
                       its next poll of the list (pollingIntervalSeconds, default 10)
  push path            the operator serving KEDA's external-push scaler, told of the
                       work by a keyspace notification
For each it creates --wakes sleeping sessions, pushes one message onto each list
at a random moment within one polling interval, and times, from the LPUSH, the
Deployment reaching one replica, the pod Running (kwok) and status.queueDepth
showing the message. --background idle sessions are present throughout (KEDA
polls them all; the operator polls and watches them all). Prints p50/p95/max;
asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
import stack
from kubernetes import client, watch

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for
from usersession_operator import metrics
from usersession_operator.session.model import GROUP, PLURAL, VERSION


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p95 = statistics.median(values), percentile(values, 95)
    return f"{p50:.2f} / {p95:.2f} / {max(values):.2f}"


class Bench:
    def __init__(self, cluster: LocalCluster) -> None:
        api_client = stack.api_client(cluster)
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.cluster = cluster
        self.rds = redis.Redis(
            host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
        )
        # First time seen, by (namespace, name), taken as watch events arrive.
        self.scaled: dict[tuple[str, str], float] = {}
        self.running: dict[tuple[str, str], float] = {}
        self.depth_seen: dict[tuple[str, str], float] = {}
        for target in (self._deployments, self._pods, self._sessions):
            threading.Thread(target=_quietly(target), daemon=True).start()

    def create(self, ns: str, names: list[str]) -> None:
        def one(name: str) -> None:
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "UserSession",
                "metadata": {"name": name},
                "spec": {"userId": "bench@example.com", "workload": {"image": "example.com/w:1"}},
            }
            self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(one, names))

    def wait_sleeping(self, ns: str, count: int, timeout: float) -> None:
        def done() -> bool:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
            ready = [
                i
                for i in items
                if (i.get("status") or {}).get("phase") == "Sleeping"
                and any(
                    c["type"] == "ScalerReady" and c["status"] == "True"
                    for c in i["status"].get("conditions", [])
                )
            ]
            return len(ready) >= count

        wait_for(done, timeout=timeout, interval=1)

    def wake(self, ns: str, names: list[str], spread: float) -> dict[str, list[float]]:
        pushed: dict[tuple[str, str], float] = {}
        schedule = sorted((random.uniform(0, spread), n) for n in names)  # noqa: S311
        start = time.monotonic()
        for offset, name in schedule:
            time.sleep(max(0.0, start + offset - time.monotonic()))
            self.rds.lpush(f"usersession:{ns}:{name}", '{"type": "wake"}')
            pushed[(ns, name)] = time.monotonic()
        keys = list(pushed)
        wait_for(lambda: all(k in self.running for k in keys), timeout=spread * 3 + 60)
        time.sleep(2)  # let the last status writes land
        return {
            "replicas 1": [self.scaled[k] - pushed[k] for k in keys],
            "pod Running": [self.running[k] - pushed[k] for k in keys],
            "status shows it": [
                self.depth_seen[k] - pushed[k] for k in keys if k in self.depth_seen
            ],
        }

    def _deployments(self) -> None:
        for event in watch.Watch().stream(self.apps.list_deployment_for_all_namespaces):
            d: Any = event["object"]
            if (d.spec.replicas or 0) >= 1:
                self.scaled.setdefault((d.metadata.namespace, d.metadata.name), time.monotonic())

    def _pods(self) -> None:
        for event in watch.Watch().stream(self.core.list_pod_for_all_namespaces):
            p: Any = event["object"]
            if p.status.phase == "Running":
                instance = (p.metadata.labels or {}).get("app.kubernetes.io/instance", "")
                self.running.setdefault((p.metadata.namespace, instance), time.monotonic())

    def _sessions(self) -> None:
        stream = watch.Watch().stream(
            self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL
        )
        for event in stream:
            obj = event["object"]
            if ((obj.get("status") or {}).get("queueDepth") or 0) >= 1:
                key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
                self.depth_seen.setdefault(key, time.monotonic())


def _quietly(target: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        # The cluster stops under the watches at the end: not news.
        with contextlib.suppress(Exception):
            target()

    return run


def push_streams() -> float:
    """KEDA's open fast-wake streams, read from the in-process operator's registry."""
    return metrics.REGISTRY.get_sample_value("usersession_push_streams") or 0.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wakes", type=int, default=20)
    parser.add_argument("--background", type=int, default=0, help="idle sessions present")
    parser.add_argument("--interval", type=float, default=10, help="KEDA's pollingInterval")
    args = parser.parse_args()

    results: dict[str, dict[str, list[float]]] = {}
    notes: list[str] = []  # printed at the end: kopf's runner captures stdout meanwhile
    with LocalCluster() as cluster:
        push = free_port()
        bench = Bench(cluster)
        started = time.monotonic()
        fast = {"USERSESSION_PUSH_PORT": str(push), "USERSESSION_PUSH_ADDRESS": f"127.0.0.1:{push}"}
        for path, settings in (("redis triggers only", {}), ("push path", fast)):
            with stack.operator(cluster, **settings):
                if args.background and path == "redis triggers only":
                    background = stack.namespace(cluster)
                    bench.create(background, [f"idle-{i}" for i in range(args.background)])
                    bench.wait_sleeping(background, args.background, timeout=1800)
                    ready_after = time.monotonic() - started
                    notes.append(f"{args.background} idle sessions ready after {ready_after:.0f} s")
                ns = stack.namespace(cluster)
                names = [f"w{i}" for i in range(args.wakes)]
                bench.create(ns, names)
                bench.wait_sleeping(ns, len(names), timeout=600)
                if path == "push path":
                    # The operator has just added the push trigger to every
                    # ScaledObject; KEDA restarts each one's scale loop at its own
                    # pace. Wake only once it streams from all of them: a steady state.
                    since, everyone = time.monotonic(), args.wakes + args.background
                    wait_for(lambda n=everyone: push_streams() >= n, timeout=1800, interval=1)
                    notes.append(
                        f"KEDA streaming to the operator for all {everyone} ScaledObjects"
                        f" {time.monotonic() - since:.0f} s after the push path came on"
                    )
                results[path] = bench.wake(ns, names, args.interval)

    print("\n".join(notes))
    print(
        f"\nwake latency with the real KEDA: {args.wakes} wakes per path, "
        f"{args.background} idle sessions present, pollingInterval {args.interval:g} s"
    )
    header = ("from LPUSH to", "redis triggers only", "push path")
    print(f"{header[0]:>18} {header[1]:>24} {header[2]:>24}   (p50 / p95 / max, s)")
    for what in ("replicas 1", "pod Running", "status shows it"):
        only, fast = results["redis triggers only"][what], results["push path"][what]
        print(f"{what:>18} {fmt(only):>24} {fmt(fast):>24}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
