"""Benchmark: what N sessions cost the whole system, with KEDA running, and what a takeover costs.

Run:
    .venv/bin/python tests/benchmarks/bench_capacity.py --sessions 1000,3000
    .venv/bin/python tests/benchmarks/bench_capacity.py --sessions 10000 --no-keda
    .venv/bin/python tests/benchmarks/bench_capacity.py --sessions 300 --quick   # CI's form

For each count, on a fresh local stack (control plane, Redis, and the real KEDA
unless --no-keda), as a platform team runs it: two `usersession-operator run`
processes electing a leader, with the push path on. Everything is read from
outside: RSS and CPU from /proc, the operators' /metrics, the API server's audit
log, Redis's INFO.

  floor      the N sessions, their 3 children and a status each, written by 16
             threads with no operator (the API server's and etcd's own pace)
  converge   N UserSessions applied by 16 threads; until all are Ready=True
             (with --no-keda the sessions are written the floor way instead,
             and the operators take them over: the takeover is the measurement)
  keda       (with KEDA) until every ScaledObject has its HPA and is Ready
  idle       60 s with nothing to do: RSS of every component, CPU shares, the
             operator's poll cycle and event-loop lag, Redis clients, API writes
  wake       --wakes sleeping sessions get one message each at a random moment
             within a polling interval: LPUSH -> one replica, -> pod Running
  failover   SIGKILL of the leader while a message arrives: the standby's RSS
             while it takes over (peak, from VmHWM) and after, the time until it
             leads and until status shows the message
  keda-only  (with KEDA) both operators stopped: --wakes more sessions woken by
             KEDA's redis trigger alone

With --processing-trigger always the operators give every ScaledObject the
second redis trigger (on the in-flight list) that the previous design had; the
files it writes (capacity-N-two-triggers.json) sit beside the default's in
docs/operations.md, to show what leaving it out saves KEDA and Redis.

Writes one JSON file per count under tests/benchmarks/results/ (--results to
change): commit, date, machine, settings and every figure. Numbers are
printed, never asserted; the README's tables are made from these files
(tests/unit/test_results.py keeps them in step).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # support/, as under pytest

import redis
from bench_scale import (
    THREADS,
    AuditLog,
    Bench,
    Histogram,
    by_resource,
    in_parallel,
    ready,
    say,
    wait,
)
from kubernetes import client

from support.operators import OperatorProcess, holder, start_operator
from support.provenance import commit, machine
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port
from usersession_localstack.manifests import install_crds
from usersession_operator.session.model import GROUP, PLURAL, VERSION
from usersession_operator.settings import OperatorSettings

RESULTS = Path(__file__).parent / "results"
LEASE = "bench-capacity"
MIB = 1024 * 1024
# KEDA as the local stack runs it, plus what a user at these counts should set (see
# docs/operations.md, "Sizing"). Its defaults (QPS 20, burst 30, 5 reconciles at a
# time) take minutes to create thousands of HPAs.
KEDA_SETTINGS = {
    "KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES": "20",
    "--kube-api-qps": "100",
    "--kube-api-burst": "200",
}


# -- processes, read through /proc ----------------------------------------------------


def proc_memory(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def proc_cpu(pid: int) -> float:
    """User plus system CPU seconds so far."""
    after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Peak RSS of some processes, sampled every 0.2 s in a thread (VmHWM is per process
    life; this gives the peak within a window)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peaks: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError, KeyError, ValueError):  # gone meanwhile
                    self.peaks[name] = max(self.peaks[name], proc_memory(pid)[0])
            self._stop.wait(0.2)


def component_pids(cluster: LocalCluster) -> dict[str, int]:
    return {c.name: c.pid for c in cluster.components if c.pid is not None and c.running()}


# -- the run --------------------------------------------------------------------------


class Run:
    def __init__(self, cluster: LocalCluster, args: argparse.Namespace, n: int) -> None:
        self.cluster, self.args, self.n = cluster, args, n
        self.bench = Bench(cluster)
        # Both replicas serve the same push port, as behind the chart's Service: only
        # the leader binds it (a standby waits before serving anything).
        port = free_port()
        self.push_ports = [port, port]
        self.push_address = f"127.0.0.1:{port}"
        self.woken: set[str] = set()
        # The floor's children as the operators will want them, so that a takeover
        # of sessions written the floor way applies nothing.
        self.bench.settings = OperatorSettings.from_env(
            {
                "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
                "USERSESSION_PUSH_ADDRESS": self.push_address,
            }
        )
        self.apps = client.AppsV1Api(self.bench.custom.api_client)
        self.autoscaling = client.AutoscalingV2Api(self.bench.custom.api_client)
        self.audit = AuditLog(cluster.audit_log)
        self.redis = redis.Redis(
            host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
        )
        self.figures: dict[str, Any] = {}
        self.ops: list[OperatorProcess] = []
        self.log_dir = cluster.workdir / "logs"
        self.ns = ""

    def record(self, name: str, value: Any, unit: str = "") -> None:
        self.figures[name] = value
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        say(f"  {name}: {shown}{(' ' + unit) if unit else ''}")

    # -- operators --

    def start_operators(self) -> None:
        for i, port in enumerate(self.push_ports):
            env = {
                "USERSESSION_PUSH_PORT": str(port),
                "USERSESSION_PUSH_ADDRESS": self.push_address,
                "USERSESSION_POLL_INTERVAL": "5",
                "USERSESSION_LOG_LEVEL": "INFO",
                "USERSESSION_PROCESSING_TRIGGER": self.args.processing_trigger,
            }
            self.ops.append(
                start_operator(
                    self.cluster,
                    f"operator-{i}",
                    self.log_dir,
                    lease=LEASE,
                    lease_namespace="default",
                    namespaces=(),
                    env=env,
                )
            )
            if i == 0:  # the first leads, so that the push address is the leader's
                wait(lambda: self.leader() is not None, 120, "a leader")

    def leader(self) -> OperatorProcess | None:
        name = holder(self.bench.custom.api_client, "default", LEASE)
        return next((op for op in self.ops if op.name == name and op.process.poll() is None), None)

    def standby(self) -> OperatorProcess:
        leader = self.leader()
        return next(op for op in self.ops if op is not leader and op.process.poll() is None)

    def stop_operators(self) -> None:
        for op in self.ops:
            if op.process.poll() is None:
                op.signal(signal.SIGTERM)
        for op in self.ops:
            op.wait(60)

    # -- parts --

    def floor(self) -> None:
        say(f"floor: {self.n} sessions with children and status, written directly")
        ns = self.bench.namespace("floor")
        took = in_parallel(lambda i: self.bench.create_directly(ns, f"f{i:05d}"), self.n)
        self.record("floor_seconds", took, "s")
        if self.args.no_keda:
            self.ns = ns  # these are the sessions the operators take over
            return
        gone = self.bench.delete_namespace(ns, timeout=3600)
        say(f"  floor namespace deleted in {gone:.0f} s")

    def converge(self) -> None:
        self.start_operators()
        leader = self.leader()
        assert leader is not None
        if self.args.no_keda:
            say(f"takeover: the leader adopts {self.n} sessions written directly")
            with Sampler({"leader": leader.process.pid}) as peak:
                started = time.monotonic()
                wait(lambda: self.known(leader) >= self.n, 3600, "all sessions known", 2)
                self.quiet(leader)
                took = time.monotonic() - started
            self.record("takeover_seconds", took, "s")
            self.record("operator_first_start_peak_mib", peak.peaks["leader"], "MiB")
            return
        say(f"converge: {self.n} UserSessions applied by {THREADS} threads")
        self.ns = ns = self.bench.namespace("capacity")
        mark = self.audit.offset()
        start = time.monotonic()
        in_parallel(lambda i: self.bench.create_session(ns, f"s{i:05d}"), self.n)
        wait(lambda: sum(map(ready, self.bench.sessions(ns))) >= self.n, 3600, "all Ready", 2)
        took = time.monotonic() - start
        self.record("converge_seconds", took, "s")
        self.record("converge_vs_floor", took / self.figures["floor_seconds"], "x")
        writes = by_resource(self.audit.writes(mark))
        self.record("operator_writes_per_session", round(sum(writes.values()) / self.n, 2))

    def keda_ready(self) -> None:
        say("keda: until every ScaledObject has its HPA and is Ready")
        start = time.monotonic()

        def done() -> bool:
            hpas = self.autoscaling.list_namespaced_horizontal_pod_autoscaler(self.ns)
            listing: Any = self.bench.custom.list_namespaced_custom_object(
                "keda.sh", "v1alpha1", self.ns, "scaledobjects"
            )
            ok = sum(
                any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (so.get("status") or {}).get("conditions") or []
                )
                for so in listing["items"]
            )
            return len(hpas.items) >= self.n and ok >= self.n

        wait(done, 3600, "KEDA done", 5)
        self.record("keda_ready_seconds", time.monotonic() - start, "s")

    def idle(self) -> None:
        seconds = self.args.idle_seconds
        leader, standby = self.leader(), self.standby()
        assert leader is not None
        say(f"idle: {seconds} s with nothing to do")
        pids = {**component_pids(self.cluster), "operator": leader.process.pid}
        pids["standby"] = standby.process.pid
        before = {name: proc_cpu(pid) for name, pid in pids.items()}
        metrics_before = leader_metrics(leader)
        mark = self.audit.offset()
        commands = int(self.redis.info("stats")["total_commands_processed"])
        time.sleep(seconds)
        commands = int(self.redis.info("stats")["total_commands_processed"]) - commands
        self.record("redis_commands_per_s", round(commands / seconds, 1), "/s")
        for name, pid in pids.items():
            self.record(f"{name}_rss_mib", round(proc_memory(pid)[0], 1), "MiB")
            share = (proc_cpu(pid) - before[name]) / seconds
            self.record(f"{name}_cpu_cores", round(share, 3), "cores")
        after = leader_metrics(leader)
        poll = Histogram.read(after, "usersession_redis_poll_duration_seconds").minus(
            Histogram.read(metrics_before, "usersession_redis_poll_duration_seconds")
        )
        lag = Histogram.read(after, "usersession_event_loop_lag_seconds").minus(
            Histogram.read(metrics_before, "usersession_event_loop_lag_seconds")
        )
        if poll.seen:
            self.record("poll_cycle_mean_ms", round(poll.total / poll.seen * 1000, 1), "ms")
        late, _ = lag.over(0.05)
        self.record("loop_holds_over_50ms", late)
        self.record("loop_wakeups", lag.seen)
        self.record("loop_worst_bucket", lag.max_bucket())
        self.record("idle_operator_writes", sum(by_resource(self.audit.writes(mark)).values()))
        self.record("redis_clients", int(self.redis.info("clients")["connected_clients"]))
        self.record("push_streams", sample(after, "usersession_push_streams"))
        hpas = self.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces()
        self.record("hpas", len(hpas.items))

    def wake(self, prefix: str) -> None:
        leader = self.leader()
        if leader is not None:  # the push path: KEDA's streams must be open first
            started = time.monotonic()
            wait(
                lambda: (
                    sample(op_metrics(leader.metrics_port), "usersession_push_streams") >= self.n
                ),
                600,
                "KEDA's push streams",
                2,
            )
            self.record("push_streams_open_s", round(time.monotonic() - started, 1), "s")
        say(f"{prefix}: {self.args.wakes} sleeping sessions woken")
        names = random.sample(
            [s["metadata"]["name"] for s in self.bench.sessions(self.ns) if ready(s)],
            self.args.wakes,
        )
        replicas: list[float] = []
        running: list[float] = []
        lock = threading.Lock()

        def one(name: str) -> None:
            time.sleep(random.uniform(0, 10))  # noqa: S311 (within one polling interval)
            self.redis.lpush(f"usersession:{self.ns}:{name}", '{"type": "wake"}')
            pushed = time.monotonic()
            wait(lambda: self.replicas(name) >= 1, 120, f"{name} at one replica", 0.05)
            up = time.monotonic() - pushed
            wait(lambda: self.pod_running(name), 120, f"{name}'s pod Running", 0.1)
            with lock:
                replicas.append(up)
                running.append(time.monotonic() - pushed)

        threads = [threading.Thread(target=one, args=(name,)) for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for name in names:
            self.redis.delete(f"usersession:{self.ns}:{name}")
        self.record(f"{prefix}_replica_p50_s", round(statistics.median(replicas), 3), "s")
        self.record(f"{prefix}_replica_p95_s", round(percentile(replicas, 95), 3), "s")
        self.record(f"{prefix}_running_p50_s", round(statistics.median(running), 3), "s")
        self.record(f"{prefix}_running_p95_s", round(percentile(running, 95), 3), "s")

    def failover(self) -> None:
        leader, standby = self.leader(), self.standby()
        assert leader is not None
        say(f"failover: SIGKILL of the leader {leader.name}")
        # Without KEDA no session is Ready (none would wake): any the leader has judged.
        probe = next(
            s
            for s in self.bench.sessions(self.ns)
            if ready(s) or (self.args.no_keda and (s.get("status") or {}).get("phase"))
        )["metadata"]["name"]
        settled_before = proc_memory(standby.process.pid)[0]
        with Sampler({"standby": standby.process.pid}) as peak:
            leader.signal(signal.SIGKILL)
            killed = time.monotonic()
            self.redis.lpush(f"usersession:{self.ns}:{probe}", '{"type": "probe"}')
            wait(lambda: self.leader() is standby, 120, "the standby leading", 0.2)
            self.record("failover_leading_s", round(time.monotonic() - killed, 2), "s")
            wait(lambda: self.depth(probe) >= 1, 300, "status current", 0.2)
            self.record("failover_status_current_s", round(time.monotonic() - killed, 2), "s")
            wait(lambda: self.known(standby) >= self.n, 3600, "all sessions known", 1)
            self.quiet(standby)
        self.redis.delete(f"usersession:{self.ns}:{probe}")
        self.record("standby_rss_before_mib", round(settled_before, 1), "MiB")
        self.record("takeover_peak_mib", round(peak.peaks["standby"], 1), "MiB")
        time.sleep(self.args.idle_seconds)
        settled = proc_memory(standby.process.pid)[0]
        self.record("after_takeover_settled_mib", round(settled, 1), "MiB")
        self.record("takeover_peak_vs_settled", round(peak.peaks["standby"] / settled, 2), "x")

    # -- reads --

    def known(self, op: OperatorProcess) -> float:
        try:
            samples = op_metrics(op.metrics_port)
        except OSError:
            return 0.0
        return sum(v for _, v in samples.get("usersession_sessions", []))

    def quiet(self, op: OperatorProcess, window: float = 5.0) -> None:
        """Until the operator uses under half a core for `window` seconds."""
        pid = op.process.pid
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            before = proc_cpu(pid)
            time.sleep(window)
            if proc_cpu(pid) - before < 0.5 * window:
                return

    def replicas(self, name: str) -> int:
        scale = self.apps.read_namespaced_deployment_scale(name, self.ns)
        return int(scale.spec.replicas or 0)

    def pod_running(self, name: str) -> bool:
        pods = self.bench.core.list_namespaced_pod(
            self.ns, label_selector=f"app.kubernetes.io/instance={name}"
        )
        return any(p.status.phase == "Running" for p in pods.items)

    def depth(self, name: str) -> int:
        obj: Any = self.bench.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )
        return int((obj.get("status") or {}).get("queueDepth") or 0)


def op_metrics(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def leader_metrics(op: OperatorProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    return op_metrics(op.metrics_port)


def sample(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(v for _, v in samples.get(name, []))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_one(args: argparse.Namespace, n: int) -> dict[str, Any]:
    keda = None if args.no_keda else KEDA_SETTINGS
    with LocalCluster(audit=True, keda=not args.no_keda, keda_settings=keda) as cluster:
        if args.no_keda:
            install_crds(cluster.admin)  # ours and KEDA's, with no KEDA to act on them
        run = Run(cluster, args, n)
        parts: list[Callable[[], None]] = [run.floor, run.converge]
        if not args.no_keda:
            parts += [run.keda_ready, run.idle, lambda: run.wake("wake_push")]
        else:
            parts += [run.idle]
        parts.append(run.failover)
        if not args.no_keda:
            parts += [run.stop_operators, lambda: run.wake("wake_redis_trigger")]
        try:
            for part in parts:
                part()
        finally:
            run.stop_operators()
        return {
            "benchmark": "bench_capacity",
            "sessions": n,
            "keda": not args.no_keda,
            "commit": commit(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine(),
            "settings": {
                "keda": keda or "stopped",
                "operator": {
                    "replicas": 2,
                    "poll_interval_seconds": 5,
                    "push": True,
                    "processing_trigger": args.processing_trigger,
                },
                "wakes": args.wakes,
                "idle_seconds": args.idle_seconds,
            },
            "figures": run.figures,
        }


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", default="1000,3000", help="comma-separated counts")
    parser.add_argument("--no-keda", action="store_true", help="KEDA stopped (10,000 and up)")
    parser.add_argument(
        "--processing-trigger",
        choices=("auto", "always"),
        default="auto",
        help="always: the previous design, a second redis trigger per session (side by side)",
    )
    parser.add_argument("--wakes", type=int, default=20)
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="CI's form: 10 wakes, 20 s idle")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.wakes, args.idle_seconds = 10, 20
    return args


def main() -> int:
    args = arguments()
    for n in (int(c) for c in args.sessions.split(",")):
        result = run_one(args, n)
        text = json.dumps(result, indent=2, sort_keys=True)
        print(text)
        if not args.no_save:
            args.results.mkdir(parents=True, exist_ok=True)
            name = f"capacity-{n}{'-no-keda' if args.no_keda else ''}"
            name += "-two-triggers.json" if args.processing_trigger == "always" else ".json"
            (args.results / name).write_text(text + "\n")
            say(f"written to {args.results / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
