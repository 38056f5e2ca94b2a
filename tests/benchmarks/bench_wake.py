"""Benchmark: how long a sleeping session takes to wake, with the real KEDA.

Run: .venv/bin/python tests/benchmarks/bench_wake.py [--wakes 20] [--intervals 10,1]

Starts its own local stack (control plane, Redis, KEDA) and the real operator.
For each KEDA polling interval it creates --wakes sleeping sessions, pushes one
message onto each list at a random moment, and measures, from the LPUSH, when
the Deployment reaches one replica and when its pod is Running (kwok). The
sessions are independent samples: KEDA polls each ScaledObject on its own
clock. Prints p50/p95/max side by side per interval; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import threading
import time
import uuid
from typing import Any

import redis
from kopf.testing import KopfRunner
from kubernetes import client, config, watch

from usersession_localstack import LocalCluster
from usersession_localstack.cluster import free_port, wait_for
from usersession_operator.model import GROUP, PLURAL, VERSION


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wakes", type=int, default=20)
    parser.add_argument("--intervals", default="10,1", help="KEDA pollingInterval values")
    args = parser.parse_args()
    intervals = [int(i) for i in args.intervals.split(",")]

    with LocalCluster() as cluster:
        os.environ.update(
            {
                "KUBECONFIG": str(cluster.kubeconfig),
                "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
                "USERSESSION_METRICS_PORT": str(free_port()),
                "USERSESSION_LIVENESS_PORT": str(free_port()),
            }
        )
        api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
        apps = client.AppsV1Api(api_client)
        rds = redis.Redis(
            host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
        )
        ns = f"bench-{uuid.uuid4().hex[:6]}"
        core.create_namespace({"metadata": {"name": ns}})
        wait_for(lambda: core.list_namespaced_service_account(ns).items, 30)
        core.create_namespaced_secret(
            ns,
            {
                "metadata": {"name": "redis-auth"},
                "stringData": {"password": cluster.redis_password},
            },
        )
        pushed: dict[str, float] = {}
        scaled: dict[str, float] = {}
        running: dict[str, float] = {}
        stop = threading.Event()

        def observe() -> None:
            # One watch for Deployments and one for Pods, timestamps taken on arrival.
            def deployments() -> None:
                for event in watch.Watch().stream(apps.list_namespaced_deployment, ns):
                    d: Any = event["object"]
                    if (d.spec.replicas or 0) >= 1:
                        scaled.setdefault(d.metadata.name, time.monotonic())
                    if stop.is_set():
                        return

            def pods() -> None:
                for event in watch.Watch().stream(core.list_namespaced_pod, ns):
                    p: Any = event["object"]
                    if p.status.phase == "Running":
                        owner = p.metadata.labels.get("app.kubernetes.io/instance", "")
                        running.setdefault(owner, time.monotonic())
                    if stop.is_set():
                        return

            def quietly(target: Any) -> Any:
                def run() -> None:
                    # The cluster stops under the watches at the end: not news.
                    with contextlib.suppress(Exception):
                        target()

                return run

            for target in (deployments, pods):
                threading.Thread(target=quietly(target), daemon=True).start()

        with KopfRunner(
            ["run", "--standalone", "-A", "-m", "usersession_operator.handlers"], timeout=60
        ):
            observe()
            names: dict[int, list[str]] = {}
            for interval in intervals:
                names[interval] = [f"w{interval}-{i}" for i in range(args.wakes)]
                for name in names[interval]:
                    custom.create_namespaced_custom_object(
                        GROUP,
                        VERSION,
                        ns,
                        PLURAL,
                        {
                            "apiVersion": f"{GROUP}/{VERSION}",
                            "kind": "UserSession",
                            "metadata": {"name": name},
                            "spec": {
                                "userId": "bench@example.com",
                                "workload": {"image": "example.com/w:1"},
                                "scaling": {"pollingIntervalSeconds": interval},
                            },
                        },
                    )
            every = [n for group in names.values() for n in group]

            def all_sleeping() -> bool:
                items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
                ready = [
                    i
                    for i in items
                    if (i.get("status") or {}).get("phase") == "Sleeping"
                    and any(
                        c["type"] == "ScalerReady" and c["status"] == "True"
                        for c in i["status"].get("conditions", [])
                    )
                ]
                return len(ready) == len(every)

            wait_for(all_sleeping, timeout=180, interval=0.5)
            # Spread the pushes over the longest interval, so they land at every
            # phase of KEDA's polling clock.
            spread = max(intervals)
            schedule = sorted((random.uniform(0, spread), n) for n in every)  # noqa: S311
            start = time.monotonic()
            for offset, name in schedule:
                time.sleep(max(0.0, start + offset - time.monotonic()))
                rds.lpush(f"usersession:{ns}:{name}", '{"type": "wake"}')
                pushed[name] = time.monotonic()
            wait_for(lambda: all(n in running for n in every), timeout=max(intervals) * 3 + 60)
            stop.set()

    print(f"\nwake latency with the real KEDA ({args.wakes} sessions per interval)")
    header = ("pollingInterval", "-> replicas 1 p50/p95/max (s)", "-> pod Running p50/p95/max (s)")
    print(f"{header[0]:>16} {header[1]:>32} {header[2]:>33}")
    for interval in intervals:
        to_scale = [scaled[n] - pushed[n] for n in names[interval]]
        to_run = [running[n] - pushed[n] for n in names[interval]]

        def fmt(values: list[float]) -> str:
            p50, p95 = statistics.median(values), percentile(values, 95)
            return f"{p50:.2f} / {p95:.2f} / {max(values):.2f}"

        print(f"{interval:>15}s {fmt(to_scale):>32} {fmt(to_run):>33}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
