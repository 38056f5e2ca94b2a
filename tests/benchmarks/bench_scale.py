"""Benchmark for issue 11: many sessions on one operator, measured from the outside.

Run (full scale; estimated at 60-75 min on two cores with today's operator, which
re-applies every child on each restart, and 20-25 min for one that meets the goals):
    .venv/bin/python tests/benchmarks/bench_scale.py
A quick run:
    .venv/bin/python tests/benchmarks/bench_scale.py --sessions 100 --big 1000 \\
        --restart 20 --pods 1000 --idle-seconds 30
One part only: --parts converge (or big, restart, pods; comma-separated).

The operator runs as its own process (`python -m usersession_operator run`), so
everything is read from outside it: its RSS and peak RSS from /proc/<pid>/status,
its CPU time from /proc/<pid>/stat, its Prometheus /metrics, and every API write
from the API server's audit log (LocalCluster(audit=True)), which names the
client of each request: apiserver_request_total has no user or client label, so
it cannot tell the operator's writes from KEDA's or the controller-manager's.

Parts:
  converge  floor: --sessions UserSessions, their 3 children (the operator's own
            builders) and one status patch each, written by 16 threads with no
            operator; then the operator: the same number applied by 16 threads
            into a fresh namespace, timed until every one has Ready=True. Writes
            per session by resource, the operator's alone. With KEDA running.
  big       --big sessions written the floor way (no operator; KEDA is stopped
            first: 10,000 ScaledObjects would swamp two cores), then the
            operator adopts them all; then --idle-seconds of idle: RSS, poll
            cycle time, event-loop lag, CPU per idle minute, idle writes.
  restart   SIGTERM the operator, LPUSH one message into --restart sessions'
            queues, start it again: operator writes in the 60 s after start
            (those sessions' own status writes excluded), the time until all
            of them show queueDepth 1, and all its writes until it is quiet.
  pods      --pods Pods in another namespace that are not the operator's (held
            by a scheduling gate, so nothing else acts on them): RSS of a freshly
            started, settled operator without them and (restarted) with them.
Writes are requests as the API server counts them: a server-side apply that
changes nothing is one too.
restart and pods run over the big part's sessions (its setup runs for them even
when big itself is not selected). Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import json
import math
import os
import signal
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import redis
from bench_operator import api_writes
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, http_ok
from usersession_localstack.manifests import install_crds
from usersession_localstack.process import Component
from usersession_operator.builders import (
    build_scaled_object,
    build_trigger_authentication,
    initial_deployment,
)
from usersession_operator.session.model import GROUP, PLURAL, VERSION, Session
from usersession_operator.session.names import child_name
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings

THREADS = 16
BENCH_AGENT = "usersession-bench"
MERGE = "application/merge-patch+json"
PROBE_LABEL = "bench.usersession/restart-probe"
MIB = 1024 * 1024

# Who made a write, from the start of its User-Agent. Anything else is the operator:
# the only other client of the API server while this runs, whatever library it uses.
WRITERS = (
    (BENCH_AGENT, "bench"),
    ("Python-urllib", "bench"),  # LocalCluster's own requests
    ("kube-controller-manager", "controller-manager"),
    ("kube-scheduler", "scheduler"),
    ("kube-apiserver", "apiserver"),
    ("kwok", "kwok"),
    ("keda", "keda"),
)
# What the issue counts as the operator's writes for a session, in print order.
SESSION_RESOURCES = (
    "usersessions",
    "usersessions/status",
    "deployments",
    "scaledobjects",
    "triggerauthentications",
    "persistentvolumeclaims",
    "events",
    "leases",
)


# -- the report ----------------------------------------------------------------


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, figure: str, measured: str, goal: str = "-", floor: str = "") -> None:
        self.rows.append((figure, measured, goal, floor))
        say(f"  {figure}: {measured}" + (f"  (goal {goal})" if goal != "-" else ""))

    def print_table(self) -> None:
        header = ("figure", "measured", "goal", "floor")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        print()
        for row in [header, tuple("-" * w for w in widths), *self.rows]:
            print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def mib(value: float) -> str:
    return f"{value:.0f} MiB"


# -- API writes, from the audit log ---------------------------------------------------


class Write(NamedTuple):
    writer: str
    agent: str
    resource: str  # "usersessions/status"
    namespace: str
    name: str
    code: int


def writer_of(agent: str) -> str:
    return next((who for prefix, who in WRITERS if agent.startswith(prefix)), "operator")


class AuditLog:
    """The API server's write log: offset() marks a moment, writes() reads what came after."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def writes(self, start: int, end: int | None = None) -> list[Write]:
        with self.path.open("rb") as log:
            log.seek(start)
            data = log.read() if end is None else log.read(end - start)
        found = []
        for line in data.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # cut by start or end while the API server was writing it
            if not isinstance(event, dict):
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "?") + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            agent = event.get("userAgent", "")
            found.append(
                Write(
                    writer_of(agent),
                    agent,
                    resource,
                    ref.get("namespace", ""),
                    ref.get("name", ""),
                    int((event.get("responseStatus") or {}).get("code") or 0),
                )
            )
        return found


def by_resource(writes: Iterable[Write], writer: str = "operator") -> Counter[str]:
    return Counter(w.resource for w in writes if w.writer == writer)


def per_session(counts: Counter[str], sessions: int, zeros: bool = False) -> str:
    """'usersessions 2.00, usersessions/status 3.10, ...' in the issue's order (with
    zeros: every one of SESSION_RESOURCES, written to or not), then the rest."""
    keys = [k for k in SESSION_RESOURCES if zeros or counts[k]] + sorted(
        k for k in counts if k not in SESSION_RESOURCES
    )
    return ", ".join(f"{k} {counts[k] / sessions:.2f}" for k in keys) or "none"


def total(counts: Counter[str]) -> str:
    """'0', or '490 (usersessions/status 190, deployments 100)'."""
    parts = ", ".join(f"{k} {v}" for k, v in counts.most_common())
    return f"{sum(counts.values())}" + (f" ({parts})" if parts else "")


# -- the operator as a process -----------------------------------------------------


def operator_env(cluster: LocalCluster) -> dict[str, str]:
    return {
        "KUBECONFIG": str(cluster.kubeconfig),
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_PUSH_PORT": "0",
    }


class Operator:
    """`python -m usersession_operator run` as a child process, read through /proc and /metrics."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.runs = 0
        self.process: Component | None = None
        self.metrics_port = 0

    def start(self) -> None:
        self.runs += 1
        self.metrics_port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("USERSESSION_")},
            **operator_env(self.cluster),
            "USERSESSION_METRICS_PORT": str(self.metrics_port),
            "USERSESSION_LIVENESS_PORT": str(free_port()),
        }
        command = [sys.executable, "-m", "usersession_operator", "run"]
        self.process = Component(
            f"operator-{self.runs}", command, self.cluster.workdir / "logs", env=env
        )
        self.process.grace = 30
        self.process.start()
        self.process.wait_until(
            lambda: http_ok(f"http://127.0.0.1:{self.metrics_port}/metrics"),
            120,
            "serving metrics",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    @property
    def pid(self) -> int:
        assert self.process is not None and self.process.pid is not None
        return int(self.process.pid)

    def check(self) -> None:
        if self.process is None or not self.process.running():
            tail = self.process.log_tail() if self.process else ""
            raise RuntimeError(f"the operator is not running; its last log lines:\n{tail}")

    def memory(self) -> tuple[float, float]:
        """(RSS, peak RSS) in MiB."""
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{self.pid}/status").read_text().splitlines()
        )
        return (
            int(fields["VmRSS"].split()[0]) * 1024 / MIB,
            int(fields["VmHWM"].split()[0]) * 1024 / MIB,
        )

    def cpu_seconds(self) -> float:
        """User plus system CPU time so far (threads included)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        after_name = stat.rsplit(")", 1)[1].split()
        utime, stime = int(after_name[11]), int(after_name[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Samples by name: the operator's /metrics, parsed."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((sample.labels, sample.value))
        return samples

    def sessions_known(self) -> float:
        """Sessions whose status the operator has computed (its usersession_sessions)."""
        try:
            samples = self.metrics().get("usersession_sessions", [])
        except OSError:
            return 0.0
        return sum(value for _, value in samples)

    def wait_quiet(self, cpu_share: float = 0.5, window: float = 5, timeout: float = 300) -> None:
        """Until the operator uses under cpu_share of a core over `window` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(window)
            if self.cpu_seconds() - before < cpu_share * window:
                return
        say(f"  (the operator was still busy after {timeout:.0f} s; measuring anyway)")


class Histogram(NamedTuple):
    buckets: list[tuple[float, float]]  # (le, cumulative count), ascending
    seen: float  # observations
    total: float

    @classmethod
    def read(cls, samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> Histogram:
        if f"{name}_count" not in samples:
            return cls([], math.nan, math.nan)
        buckets = sorted((float(labels["le"]), v) for labels, v in samples[f"{name}_bucket"])
        return cls(buckets, samples[f"{name}_count"][0][1], samples[f"{name}_sum"][0][1])

    def present(self) -> bool:
        return not math.isnan(self.seen)

    def minus(self, earlier: Histogram) -> Histogram:
        if not earlier.present():
            return self
        before = dict(earlier.buckets)
        return Histogram(
            [(le, n - before.get(le, 0)) for le, n in self.buckets],
            self.seen - earlier.seen,
            self.total - earlier.total,
        )

    def max_bucket(self) -> str:
        """The bucket of the largest observation: '<= 50 ms', or '> 10 s'."""
        for le, cumulative in self.buckets:
            if cumulative >= self.seen:
                return f"<= {le * 1000:g} ms" if math.isfinite(le) else "> largest bucket"
        return "?"

    def over(self, seconds: float) -> tuple[float, float]:
        """(observations above the smallest bucket bound >= seconds, that bound)."""
        for le, cumulative in self.buckets:
            if le >= seconds:
                return self.seen - cumulative, le
        return math.nan, seconds


# -- the bench's own API client --------------------------------------------------------


def session_body(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "UserSession",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"userId": f"{name}@example.com", "workload": {"image": "example.com/w:1"}},
    }


def floor_status(session: Session) -> dict[str, Any]:
    """What the operator writes for a new session KEDA has not taken on, written by
    hand (the floor must not depend on the operator's internals, which change under
    it), word for word: a takeover of these sessions then writes no status, as with
    the operator's own."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": now,
            "observedGeneration": session.generation,
        }

    name = child_name(session.name)
    return {
        "observedGeneration": session.generation,
        "phase": "Pending",  # no KEDA takes these on: the big parts stop it
        "queueName": session.queue_name,
        "queueDepth": 0,
        "processingDepth": 0,
        "replicas": 0,
        "readyReplicas": 0,
        "children": {"deployment": name, "scaledObject": name, "triggerAuthentication": name},
        "conditions": [
            condition(
                "Ready",
                "False",
                "ScalerNotReady",
                "waiting for KEDA to take on the ScaledObject;"
                " until then nothing wakes the session",
            ),
            condition(
                "RedisReachable", "True", "QueuePolled", f"queue {session.queue_name} is readable"
            ),
            condition(
                "ScalerReady",
                "Unknown",
                "NoScalerStatus",
                "KEDA has not reported on the ScaledObject yet",
            ),
        ],
    }


class Bench:
    """The benchmark's client of the API server and Redis (its writes are labelled as its own)."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = THREADS * 2
        api_client = client.ApiClient(configuration)
        api_client.user_agent = BENCH_AGENT
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.settings = OperatorSettings.from_env(operator_env(cluster))
        self.redis = redis.Redis(
            host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
        )
        self.audit = AuditLog(cluster.audit_log)

    def namespace(self, prefix: str) -> str:
        """A fresh namespace with the Redis Secret and its default ServiceAccount."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        body: Any = {"metadata": {"name": name}}
        self.core.create_namespace(body, _preload_content=False)
        wait(lambda: self.core.list_namespaced_service_account(name).items, 60, "ServiceAccount")
        secret: Any = {
            "metadata": {"name": "redis-auth"},
            "stringData": {"password": self.cluster.redis_password},
        }
        self.core.create_namespaced_secret(name, secret, _preload_content=False)
        return name

    def delete_namespace(self, name: str, timeout: float) -> float:
        """Delete it and wait until it is gone; returns the seconds it took."""
        start = time.monotonic()
        self.core.delete_namespace(name, _preload_content=False)

        def gone() -> bool:
            try:
                self.core.read_namespace(name, _preload_content=False)
            except client.ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False

        wait(gone, timeout, f"namespace {name} deleted", interval=1)
        return time.monotonic() - start

    def create_session(
        self, namespace: str, name: str, labels: dict[str, str] | None = None
    ) -> Any:
        return self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, session_body(name, labels)
        )

    def create_directly(
        self, namespace: str, name: str, labels: dict[str, str] | None = None
    ) -> None:
        """The floor: a session, its three children and its status, with no operator."""
        session = session_from_body(self.create_session(namespace, name, labels), self.settings)
        for manifest in (
            build_trigger_authentication(session),
            initial_deployment(session),  # replicas 0, as the operator creates it
            build_scaled_object(session),
        ):
            group, version = manifest["apiVersion"].split("/")
            plural = manifest["kind"].lower() + "s"
            self.custom.create_namespaced_custom_object(
                group, version, namespace, plural, manifest, _preload_content=False
            )
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": floor_status(session)},
            _content_type=MERGE,
            _preload_content=False,
        )

    def sessions(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        listed: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, label_selector=selector
        )
        items: list[dict[str, Any]] = listed["items"]
        return items


def ready(session: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (session.get("status") or {}).get("conditions") or []
    )


def in_parallel(work: Callable[[int], object], count: int) -> float:
    """work(0..count-1) on THREADS threads; the seconds it took. The first error is raised."""
    start = time.monotonic()
    pool = concurrent.futures.ThreadPoolExecutor(THREADS)
    try:
        for _ in pool.map(work, range(count)):
            pass
    finally:  # on an error or Ctrl-C, what has not started never will
        pool.shutdown(cancel_futures=True)
    return time.monotonic() - start


def wait(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def wait_writes_quiet(bench: Bench, op: Operator, quiet: float, timeout: float) -> float:
    """Until the operator has written nothing for `quiet` seconds; returns when it last wrote."""
    start = time.monotonic()
    offset, last_write = bench.audit.offset(), start
    while time.monotonic() - last_write < quiet:
        if time.monotonic() - start > timeout:
            say(f"  (the operator still writing after {timeout:.0f} s; going on)")
            break
        op.check()
        time.sleep(1)
        end = bench.audit.offset()
        if any(w.writer == "operator" for w in bench.audit.writes(offset, end)):
            last_write = time.monotonic()
        offset = end
    return last_write - start


# -- part 1: converge ----------------------------------------------------------------


def part_converge(bench: Bench, op: Operator, report: Report, n: int, timeout: float) -> None:
    say(f"converge: floor, {n} sessions with children and status, no operator")
    floor_ns = bench.namespace("floor")
    mark = bench.audit.offset()
    floor = in_parallel(lambda i: bench.create_directly(floor_ns, f"s{i:05d}"), n)
    floor_writes = by_resource(bench.audit.writes(mark), writer="bench")
    say(f"  floor: {floor:.1f} s; bench writes per session: {per_session(floor_writes, n)}")
    took = bench.delete_namespace(floor_ns, timeout)
    say(f"  floor namespace deleted in {took:.0f} s")

    say(f"converge: the operator, {n} sessions applied by {THREADS} threads")
    op.start()
    time.sleep(2)  # its watches start
    ns = bench.namespace("converge")
    mark, metrics_before = bench.audit.offset(), api_writes(bench.cluster)
    cpu_before = op.cpu_seconds()
    start = time.monotonic()
    in_parallel(lambda i: bench.create_session(ns, f"s{i:05d}"), n)
    created = time.monotonic() - start

    first_reached: dict[int, float] = {}  # Ready count -> seconds when first seen

    def all_ready() -> bool:
        op.check()
        count = sum(map(ready, bench.sessions(ns)))
        first_reached.setdefault(count, time.monotonic() - start)
        return count >= n

    wait(all_ready, timeout, f"{n} sessions Ready")
    converged = time.monotonic() - start

    def when(share: float) -> str:
        return f"{min(t for c, t in first_reached.items() if c >= share * n):.1f} s"

    say(f"  Ready: the first after {when(1 / n)}, half after {when(0.5)}, 90% after {when(0.9)}")
    cpu = op.cpu_seconds() - cpu_before
    time.sleep(10)  # the writes that follow Ready (KEDA's report, the last polls) count too
    writes = bench.audit.writes(mark)
    ours = by_resource(writes)
    metrics_total = sum((api_writes(bench.cluster) - metrics_before).values())
    audit_total = sum(1 for w in writes if w.resource.split("/")[0] in _METRIC_KINDS)
    rss, _ = op.memory()
    say(f"  all Ready after {converged:.1f} s (creating them took {created:.1f} s)")
    say(f"  operator writes per session: {per_session(ours, n, zeros=True)}")
    say(f"  the operator's clients: {sorted({w.agent for w in writes if w.writer == 'operator'})}")
    for who in sorted({w.writer for w in writes} - {"operator"}):
        say(f"  {who} writes per session: {per_session(by_resource(writes, who), n)}")
    say(
        f"  cross-check, writes to {'/'.join(sorted(_METRIC_KINDS))}: "
        f"{metrics_total} in apiserver_request_total, {audit_total} in the audit log"
    )
    report.add(
        f"{n} sessions Ready, operator", f"{converged:.1f} s", "<= 1.5x floor", f"{floor:.1f} s"
    )
    report.add("  ratio to the floor", f"{converged / floor:.2f}x", "<= 1.5x (stretch 1.3x)")
    operator_total = sum(ours.values())
    floor_total = sum(floor_writes.values())
    report.add(
        "  operator writes per new session",
        f"{operator_total / n:.2f}",
        "<= 6",
        f"{floor_total / n:.2f}",
    )
    report.add(
        "  status writes per new session",
        f"{ours['usersessions/status'] / n:.2f}",
        "<= 2",
        f"{floor_writes['usersessions/status'] / n:.2f}",
    )
    report.add(f"  operator RSS with {n} sessions", mib(rss))
    report.add(f"  operator CPU to converge {n}", f"{cpu:.1f} s")

    say("  deleting the converge namespace (the operator's finalizers run)")
    took = bench.delete_namespace(ns, timeout)
    say(f"  deleted in {took:.0f} s")
    op.stop()


_METRIC_KINDS = {"usersessions", "deployments", "scaledobjects", "triggerauthentications", "events"}


# -- part 2: big -----------------------------------------------------------------------


def setup_big(
    bench: Bench, op: Operator, report: Report, m: int, probes: int, timeout: float
) -> str:
    """m sessions written directly (the first `probes` labelled for the restart part),
    then the operator started over them and left to settle."""
    say(f"big: writing {m} sessions with children and status directly (no operator, no KEDA)")
    ns = bench.namespace("big")
    took = in_parallel(
        lambda i: bench.create_directly(
            ns, f"b{i:05d}", {PROBE_LABEL: "true"} if i < probes else None
        ),
        m,
    )
    say(f"  written in {took:.0f} s")
    mark = bench.audit.offset()
    op.start()
    started = time.monotonic()
    # Every session has a status of the operator's (its usersession_sessions gauge
    # counts them all), then nothing written for 15 s: the adoption is over.
    wait(lambda: op.sessions_known() >= m, timeout, f"the operator knowing all {m} sessions", 2)
    say(f"  all {m} sessions have the operator's status after {time.monotonic() - started:.0f} s")
    settled = wait_writes_quiet(bench, op, quiet=15, timeout=timeout)
    adopted = by_resource(bench.audit.writes(mark))
    report.add(f"operator adopting {m} existing sessions", f"last write after {settled:.0f} s")
    report.add("  its writes per session", f"{sum(adopted.values()) / m:.2f}")
    say(f"  by resource: {per_session(adopted, m, zeros=True)}")
    return ns


def part_big(bench: Bench, op: Operator, report: Report, m: int, idle: float) -> None:
    say(f"big: {idle:.0f} s idle with {m} sessions")
    op.wait_quiet(timeout=120)
    mark, cpu_before, before = bench.audit.offset(), op.cpu_seconds(), op.metrics()
    time.sleep(idle)
    after, cpu = op.metrics(), op.cpu_seconds() - cpu_before
    idle_writes = by_resource(bench.audit.writes(mark))
    rss, peak = op.memory()
    report.add(f"RSS with {m} sessions", mib(rss), "<= 400 MiB (stretch 250)")
    report.add("  peak RSS so far (VmHWM)", mib(peak))

    poll_name = "usersession_redis_poll_duration_seconds"
    poll = Histogram.read(after, poll_name).minus(Histogram.read(before, poll_name))
    if poll.present() and poll.seen > 0:
        measured = f"mean {poll.total / poll.seen * 1000:.0f} ms, max {poll.max_bucket()}"
        measured += f" ({poll.seen:.0f} cycles)"
    else:
        measured = "n/a (no poll cycle in the window)"
    report.add(f"  one poll cycle over {m} queues", measured, "<= 200 ms")

    lag_name = "usersession_event_loop_lag_seconds"
    lag_now = Histogram.read(after, lag_name)
    if lag_now.present():
        lag = lag_now.minus(Histogram.read(before, lag_name))
        late, bound = lag.over(0.05)
        measured = f"max {lag.max_bucket()}, {late:.0f} of {lag.seen:.0f} wake-ups"
        measured += f" over {bound * 1000:g} ms"
        since_start = lag_now.over(0.05)[0]
        measured += f" (since start: max {lag_now.max_bucket()}, {since_start:.0f} over)"
    else:
        measured = "n/a (no usersession_event_loop_lag_seconds metric)"
    report.add("  event-loop lag while idle", measured, "<= 50 ms at a time")
    report.add("  operator CPU per idle minute", f"{cpu / idle * 60:.1f} s")
    report.add("  API writes while idle", total(idle_writes), "0")


# -- part 3: restart ---------------------------------------------------------------------


def part_restart(
    bench: Bench, op: Operator, report: Report, ns: str, m: int, timeout: float
) -> None:
    probes = {s["metadata"]["name"]: s for s in bench.sessions(ns, f"{PROBE_LABEL}=true")}
    say(f"restart: stopping the operator, one message into {len(probes)} queues, starting it")
    op.check()
    op.stop()
    with bench.redis.pipeline() as pipe:
        for s in probes.values():
            pipe.lpush(s["status"]["queueName"], '{"type": "bench"}')
        pipe.execute()
    mark = bench.audit.offset()
    start = time.monotonic()
    op.start()

    at_60s: list[int] = []  # the audit log's offset 60 s after the start

    def mark_60s() -> None:
        if not at_60s and time.monotonic() - start >= 60:
            at_60s.append(bench.audit.offset())

    def current() -> bool:
        op.check()
        mark_60s()
        items = bench.sessions(ns, f"{PROBE_LABEL}=true")
        return all((s.get("status") or {}).get("queueDepth") == 1 for s in items)

    try:
        wait(current, timeout, "restart probes current")
        caught_up = f"{time.monotonic() - start:.1f} s"
    except TimeoutError:
        caught_up = f"not within {timeout:.0f} s"
    time.sleep(max(0.0, start + 60 - time.monotonic()))
    mark_60s()

    def unchanged(end: int | None = None) -> Counter[str]:
        """The operator's writes since its start, the probes' own status writes left out."""
        return Counter(
            w.resource
            for w in bench.audit.writes(mark, end)
            if w.writer == "operator"
            and not (w.resource == "usersessions/status" and w.name in probes)
        )

    report.add(
        f"writes in 60 s after a restart over {m} sessions",
        total(unchanged(at_60s[0])),
        "0",
    )
    say(f"  (the {len(probes)} sessions given a message are left out of that count)")
    report.add(f"  all {len(probes)} probes show queueDepth 1 after", caught_up, "<= 120 s")
    waited = time.monotonic() - start
    quiet = waited + wait_writes_quiet(bench, op, quiet=15, timeout=timeout)
    report.add(f"  all writes until quiet (at {quiet:.0f} s)", total(unchanged()))
    with bench.redis.pipeline() as pipe:
        for s in probes.values():
            pipe.delete(s["status"]["queueName"])
        pipe.execute()


# -- part 4: unrelated pods ----------------------------------------------------------------


def part_pods(bench: Bench, op: Operator, report: Report, p: int, timeout: float) -> None:
    """RSS of a freshly started, settled operator without and with the Pods around.

    Two fresh starts, not one process before and after: an operator that has
    just caught up with thousands of sessions holds freed heap that new
    allocations reuse, which would hide what the Pods cost (measured at 1,000
    sessions: +0 MiB in place for 1,000 Pods, where a lightly loaded operator
    grew 22 MiB for 3,000). The in-place figure is printed too."""
    say(f"pods: {p} Pods that are not the operator's, in another namespace")
    settle(bench, op, timeout)
    before, _ = op.memory()
    ns = bench.namespace("unrelated")
    mark = bench.audit.offset()

    def pod(i: int) -> None:
        body: Any = {
            "metadata": {"name": f"p{i:05d}", "labels": {"app": "unrelated", "shard": str(i % 10)}},
            "spec": {
                # Held: no scheduler, kwok or controller acts on them, so only their
                # creation (and the operator's watches, if they see them) costs anything.
                "schedulingGates": [{"name": "bench.usersession/hold"}],
                "containers": [{"name": "main", "image": "example.com/unrelated:1"}],
            },
        }
        bench.core.create_namespaced_pod(ns, body, _preload_content=False)

    took = in_parallel(pod, p)
    say(f"  created in {took:.0f} s")
    time.sleep(10)
    op.wait_quiet(timeout=120)
    in_place, _ = op.memory()
    writes = by_resource(bench.audit.writes(mark))
    say("  restarting the operator with the Pods present")
    op.stop()
    op.start()
    settle(bench, op, timeout)
    after, _ = op.memory()
    report.add(
        f"RSS added by {p} unrelated Pods",
        f"{after - before:+.1f} MiB ({mib(before)} -> {mib(after)}, fresh starts)",
        "< 10 MiB",
    )
    report.add("  in place (same process)", f"{in_place - before:+.1f} MiB")
    report.add("  operator writes while they were created", total(writes), "0")


def settle(bench: Bench, op: Operator, timeout: float) -> None:
    """Until the operator has not written for 15 s and uses under half a core."""
    op.check()
    wait_writes_quiet(bench, op, quiet=15, timeout=timeout)
    op.wait_quiet(timeout=120)


# -- main ----------------------------------------------------------------------------------


PARTS = ("converge", "big", "restart", "pods")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {PARTS}")
    parser.add_argument("--sessions", type=int, default=1000, help="converge: sessions")
    parser.add_argument("--big", type=int, default=10_000, help="big: sessions")
    parser.add_argument("--restart", type=int, default=100, help="restart: messages pushed")
    parser.add_argument("--pods", type=int, default=10_000, help="pods: unrelated Pods")
    parser.add_argument("--idle-seconds", type=float, default=60, help="big: idle window")
    parser.add_argument("--timeout", type=float, default=3600, help="for any one wait")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if parts - set(PARTS):
        parser.error(f"unknown parts: {sorted(parts - set(PARTS))}")

    # SIGTERM as Ctrl-C, so that the finally blocks stop the operator and the cluster
    # (SIGINT too: a shell starts a background job with it ignored).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    report = Report()
    started = time.monotonic()
    with LocalCluster(audit=True, keda="converge" in parts) as cluster:
        if "converge" not in parts:
            install_crds(cluster.admin)  # ours and KEDA's, with no KEDA running
        bench = Bench(cluster)
        op = Operator(cluster)
        try:
            if "converge" in parts:
                part_converge(bench, op, report, args.sessions, args.timeout)
            if parts & {"big", "restart", "pods"}:
                if cluster.with_keda:
                    cluster.stop_keda()
                    say("KEDA stopped for the big parts: ScaledObjects are written, not served")
                ns = setup_big(bench, op, report, args.big, args.restart, args.timeout)
                if "big" in parts:
                    part_big(bench, op, report, args.big, args.idle_seconds)
                if "restart" in parts:
                    part_restart(bench, op, report, ns, args.big, args.timeout)
                if "pods" in parts:
                    part_pods(bench, op, report, args.pods, args.timeout)
        finally:
            op.stop()
            with contextlib.suppress(Exception):
                report.print_table()
    print(f"\n(whole run: {(time.monotonic() - started) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the operator and the cluster are stopped by now
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
