"""The chart's alerts and dashboard, evaluated by a real Prometheus on the real components.

Prometheus (Debian's package, a child process on a free loopback port) scrapes
the operator (its own process, the command the image runs) and the session API
(served in this process) every second, and evaluates the chart's rule file,
the same file the PrometheusRule embeds, every second. A scenario gives every
alert a reason to fire: a session made Degraded, a session woken through the
API, Redis stopped, then the API and the operator stopped. An alert counts as
reached when the real rule engine has it pending (its expression returned data;
the `for:` minutes are promtool's business, tests/unit/monitoring/). Then every
dashboard query must return numbers over the scenario.

With USERSESSION_DASHBOARD_SERIES=<file> the dashboard's series are also written
there as JSON, for tests/benchmarks/plot_dashboard.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from pathlib import Path

import pytest
import requests
from kubernetes import client

from integration.sessionapi.harness import ALICE_TOKEN, Http, Served, api_settings
from support.monitoring import (
    ALERTS,
    API_JOB,
    OPERATOR_JOB,
    alerts,
    panel_queries,
    signal,
)
from support.namespaces import fresh_namespace
from support.prometheus import BINARY, MISSING, Prometheus, finite_values
from support.sessions import FAST_SCALING, IMAGE, Api, unique
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for
from usersession_localstack.stack import start_operator
from usersession_operator.sessionapi.app import create_app

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)

# Alerts whose condition this scenario cannot produce in seconds. For these the
# expression without its threshold (what the alert measures) must return a real
# number, and the whole expression must stay silent.
SIGNAL_ONLY = {
    # A poll loop hung for 10 minutes in a process that still serves metrics:
    # nothing short of changing the operator's code causes that.
    "UserSessionOperatorNotPolling",
    # Wakes here take under a second (KEDA polls every second); the alert is at 30 s.
    "UserSessionWakeSlow",
    # Both wait minutes (5 and 15) past a limit and a capacity the scenario states.
    "UserSessionOperatorMemoryHigh",
    "UserSessionOverCapacity",
}
# The wake-latency histogram was added to the operator alongside these rules:
# an operator without it may leave its alert's signal and panel empty.
WAKE_METRIC = "usersession_wake_duration_seconds"
# Where the dashboard's series go for the plot; a plot wants each step of the
# scenario to show on its own, so then it lingers a little. The suite does not.
SERIES_FILE = os.environ.get("USERSESSION_DASHBOARD_SERIES")
LINGER = 10.0 if SERIES_FILE else 0.0


def test_every_alert_and_dashboard_query_returns_data_in_a_real_scenario(
    cluster: LocalCluster, api: Api, api_client: client.ApiClient, tmp_path: Path
) -> None:
    rules = alerts()
    reached: set[str] = set()
    events: dict[str, float] = {}
    metrics_port = free_port()
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(fresh_namespace(api_client, "mon", cluster.redis_password))
        served = Served(
            create_app(api_settings(cluster, ns, public_metrics=True), api_client=api_client)
        )
        prom = stack.enter_context(
            Prometheus(
                tmp_path / "prometheus",
                {OPERATOR_JOB: f"127.0.0.1:{metrics_port}", API_JOB: f"127.0.0.1:{served.port}"},
                [ALERTS],
            )
        )
        # Their own stacks, so the scenario can stop them before the end.
        operator_stack = stack.enter_context(contextlib.ExitStack())
        operator = start_operator(
            cluster,
            tmp_path,
            USERSESSION_POLL_INTERVAL="1",
            USERSESSION_METRICS_PORT=str(metrics_port),
            # As the chart states them, so the budget alerts have their signals.
            USERSESSION_MEMORY_LIMIT=str(2 * 2**30),
            USERSESSION_CAPACITY="1000",
        )
        operator_stack.callback(operator.stop)
        api_stack = stack.enter_context(contextlib.ExitStack())
        api_stack.enter_context(served)
        alice = Http(served.base, ALICE_TOKEN)
        prom.wait_for_data(f'count(up{{job=~"{OPERATOR_JOB}|{API_JOB}"}} == 1) == 2', 30, "up")
        start = time.time()
        # Exposed from start-up on, observed or not.
        metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        has_wake_metric = f"# TYPE {WAKE_METRIC} histogram" in metrics
        time.sleep(LINGER)

        # Two sessions the API server refuses a Deployment for, one before and one
        # after the wake: the failed-reconcile counter then rises between two scrapes
        # (a series born at 1 has no rate), without waiting for the 10 s retry.
        degraded = [unique("degraded"), unique("degraded")]
        bad_workload = {"image": IMAGE, "podLabels": {"team": "not valid!"}}
        api.create(ns, degraded[0], workload=bad_workload)
        events["Degraded session created"] = time.time()
        # The API addresses sessions by UUID, the names it gives the ones it creates.
        woken = str(uuid.uuid4())
        api.create(ns, woken, scaling=FAST_SCALING)
        wait_for(lambda: alice.call("GET", f"/session/{woken}/status").json().get("phase"), 30)
        api.wait_status(ns, woken, lambda s: s.get("phase") == "Sleeping")
        woke = alice.call("POST", f"/session/{woken}/wake")
        assert woke.status_code == 200 and woke.json()["queued"], woke.text
        events["session woken"] = time.time()
        api.wait_status(ns, woken, lambda s: s.get("phase") == "Running", timeout=60)
        api.create(ns, degraded[1], workload=bad_workload)
        for name in degraded:
            api.wait_status(ns, name, lambda s: s.get("phase") == "Degraded")
        for name in ("UserSessionDegraded", "UserSessionReconcileErrors"):
            prom.wait_alert(name, timeout=40)
            reached.add(name)
        time.sleep(LINGER)

        for name in SIGNAL_ONLY:
            expr = rules[name]["expr"]
            if name == "UserSessionWakeSlow" and not has_wake_metric:
                continue  # allowed empty without the histogram (see WAKE_METRIC)
            prom.wait_for_data(signal(expr), 20, f"{name}'s signal", finite=True)
            assert prom.query(expr) == [], f"{name} holds in a healthy scenario"

        cluster.stop_redis()
        events["Redis stopped"] = time.time()
        try:
            # A chat needs Redis: 503 each time, until the rules have seen enough of them.
            waiting = {"UserSessionRedisPollErrors", "UserSessionApiErrors"}
            deadline = time.monotonic() + 40
            while waiting:
                failed = alice.call("POST", f"/session/{woken}/chat?wait=0", {"message": "hi"})
                assert failed.status_code == 503, failed.text
                waiting = {n for n in waiting if not prom.query(f'ALERTS{{alertname="{n}"}}')}
                assert time.monotonic() < deadline, f"never pending: {waiting}"
                time.sleep(0.5)
            reached |= {"UserSessionRedisPollErrors", "UserSessionApiErrors"}
        finally:
            cluster.start_redis()
        events["Redis started"] = time.time()
        time.sleep(LINGER)

        # Deleted while the operator runs, so no finalizer outlives the test.
        events["sessions deleted"] = time.time()
        for name in (*degraded, woken):
            api.delete(ns, name)
        wait_for(lambda: not any(api.session(ns, n) for n in (*degraded, woken)), 60)

        time.sleep(LINGER)
        events["API and operator stopped"] = time.time()
        api_stack.close()
        operator_stack.close()
        for name in ("UserSessionApiDown", "UserSessionOperatorDown"):
            prom.wait_alert(name)
            reached.add(name)
        time.sleep(LINGER)
        end = time.time()

        assert reached | SIGNAL_ONLY == set(rules), "an alert this scenario does not exercise"
        loaded = {rule["name"]: rule for rule in prom.rules()}
        assert set(loaded) == set(rules)
        unhealthy = {n: r.get("lastError") for n, r in loaded.items() if r["health"] != "ok"}
        assert not unhealthy, unhealthy

        empty, dump = [], []
        for query in panel_queries():
            series = prom.query_range(query.promql(), start, end)
            dump.append({"panel": query.panel, "legend": query.legend, "series": series})
            if not finite_values(series) and (has_wake_metric or WAKE_METRIC not in query.expr):
                empty.append(f"{query.panel}: {query.expr}")
        assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

    if SERIES_FILE:
        Path(SERIES_FILE).write_text(
            json.dumps({"start": start, "end": end, "events": events, "queries": dump})
        )
