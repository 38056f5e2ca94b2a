"""Benchmark: time from apply to Ready, and API writes an idle session costs.

Run: .venv/bin/python tests/benchmarks/bench_operator.py [--sessions 100] [--idle-minutes 10]

Starts its own local cluster and the real operator, prints numbers, asserts
nothing about them (timing goals live here, not in tests).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter

import stack
from kubernetes import client

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.session.model import GROUP, PLURAL, VERSION

WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY", "DELETE"}
OURS = {"usersessions", "deployments", "scaledobjects", "triggerauthentications", "events"}
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def api_writes(cluster: LocalCluster) -> Counter[str]:
    """API-server writes by resource/subresource, for the kinds the operator touches."""
    counts: Counter[str] = Counter()
    for line in cluster.api("GET", "/metrics").splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("verb") in WRITE_VERBS and labels.get("resource") in OURS:
            key = labels["resource"] + (
                f"/{labels['subresource']}" if labels.get("subresource") else ""
            )
            counts[key] += int(float(match["value"]))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--idle-minutes", type=float, default=10)
    args = parser.parse_args()

    with LocalCluster() as cluster:
        api = client.CustomObjectsApi(stack.api_client(cluster))
        core = client.CoreV1Api(api.api_client)
        ns = stack.namespace(cluster)

        def create(name: str) -> None:
            api.create_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "UserSession",
                    "metadata": {"name": name},
                    "spec": {
                        "userId": f"{name}@example.com",
                        "workload": {"image": "example.com/w:1"},
                    },
                },
            )

        def ready_count() -> int:
            items = api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
            return sum(
                any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (i.get("status") or {}).get("conditions", [])
                )
                for i in items
            )

        with stack.operator(cluster):
            time.sleep(2)  # let the watches start
            start = time.monotonic()
            create("single")
            wait_for(lambda: ready_count() == 1, timeout=60, interval=0.05)
            single = time.monotonic() - start

            start = time.monotonic()
            for i in range(args.sessions):
                create(f"s{i:04d}")
            created = time.monotonic() - start
            wait_for(lambda: ready_count() == args.sessions + 1, timeout=600, interval=0.2)
            many = time.monotonic() - start

            time.sleep(15)  # the last polls and child events settle
            before = api_writes(cluster)
            idle_seconds = args.idle_minutes * 60
            idle_from = time.time()
            time.sleep(idle_seconds)
            after = api_writes(cluster)
            # Who wrote the events: the operator, or the control plane about itself?
            idle_events = Counter(
                f"{e.source.component or e.reporting_component}/{e.reason}"
                for e in core.list_event_for_all_namespaces().items
                if (e.last_timestamp or e.event_time or e.metadata.creation_timestamp).timestamp()
                >= idle_from
            )

        idle = after - before
        total_sessions = args.sessions + 1
        print(f"apply -> Ready, one session:             {single:.2f} s")
        print(
            f"apply -> Ready, {args.sessions} sessions (all Ready): {many:.2f} s "
            f"(creating them took {created:.2f} s)"
        )
        print(
            f"idle for {args.idle_minutes:g} min with {total_sessions} sessions: "
            f"{sum(idle.values())} API writes ({dict(idle) or 'none'}), "
            f"{sum(idle.values()) / total_sessions:.3f} per session"
        )
        print(f"events during the idle period, by source/reason: {dict(idle_events) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
