"""A chaos run: sessions receiving a stream of numbered messages while faults are injected.

Seeded and bounded in time, over the real local stack on loopback: control
plane, Redis (append-only), the real KEDA, two operator replicas electing a
leader with the push path on, and a worker process per Running pod (the
reference worker, one second of work per message). Each message is a chat
message whose reply goes to a ledger list of the run's own (chaos:ledger,
outside every session's keys, so no finalizer touches it): a message is
handled when its id is in the ledger, and handled twice when it is there twice.

Sessions come in two kinds: those that receive messages (they are suspended,
resumed and edited, never deleted: a deleted session's messages go with it by
design) and disposable ones (created and deleted in bursts, never sent a message).
At the end, with every component up, suspended sessions resumed, and every fault
undone, the run checks what the product promises (docs/reliability.md) and returns
the figures; check() says which promise failed.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from kubernetes import client, config

from chaos.faults import KINDS, Injector, Operators, patch_spec, persist
from support.namespaces import fresh_namespace
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.pods import PodRunner
from usersession_operator.session.keys import processing_key
from usersession_operator.session.model import GROUP, PLURAL, VERSION

LEDGER = "chaos:ledger"
# KEDA's client as docs/operations.md ("Sizing") advises for hundreds of sessions.
KEDA = {
    "--kube-api-qps": "100",
    "--kube-api-burst": "200",
    "KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES": "20",
}
SCALING = {"idleTimeoutSeconds": 8, "pollingIntervalSeconds": 2, "startTimeoutSeconds": 60}
WORKLOAD = {
    "image": "registry.example.com/session-worker:0.1.0",
    "env": [
        {"name": "WORKER_WORK_SECONDS", "value": "1"},
        {"name": "WORKER_REPLY_TTL", "value": "86400"},
    ],
    "terminationGracePeriodSeconds": 15,
}


@dataclass
class Plan:
    seed: int = 1
    sessions: int = 300  # those receiving messages; a tenth more are disposable
    minutes: float = 4.0  # while faults are injected
    faults_per_kind: int = 2
    messages_per_second: float = 2.0
    converge_seconds: float = 600.0  # the bound on the end checks
    # After the mix, each kind once more alone, timed: how long status lags after it.
    measure_lag: bool = True


@dataclass
class Report:
    plan: Plan
    sent: int = 0
    handled: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    left_in_queues: int = 0
    left_in_flight: int = 0
    orphans: dict[str, int] = field(default_factory=dict)
    stuck_deleting: int = 0
    not_converged: list[str] = field(default_factory=list)
    converged_after_last_fault_s: float | None = None
    false_ready: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    operator_rss_mib: dict[str, float] = field(default_factory=dict)
    # fault kind -> seconds from the fault's end until a message sent then was handled,
    # and until every status read the truth again (None: not within the bound).
    lag_s: dict[str, dict[str, float | None]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} messages never handled: {self.lost[:5]}")
        # A duplicate needs a fault that cut a handling short or lost an answer.
        if self.duplicates > sum(self.faults.values()):
            found.append(f"{self.duplicates} duplicates from {sum(self.faults.values())} faults")
        if self.left_in_queues or self.left_in_flight:
            found.append(f"left: {self.left_in_queues} queued, {self.left_in_flight} in flight")
        if any(self.orphans.values()):
            found.append(f"orphans: {self.orphans}")
        if self.stuck_deleting:
            found.append(f"{self.stuck_deleting} sessions stuck in deletion")
        if self.not_converged:
            found.append(f"not converged: {self.not_converged[:5]}")
        if self.false_ready:
            found.append(f"Ready=True on sessions that could not wake: {self.false_ready[:5]}")
        return found

    def rss_rows(self) -> list[tuple[str, float]]:
        return sorted(self.operator_rss_mib.items())

    def table(self) -> str:
        rows = [
            ("messages sent / handled", f"{self.sent} / {self.handled}"),
            ("messages lost", str(len(self.lost))),
            ("handled more than once", f"{self.duplicates}"),
            ("left queued / in flight", f"{self.left_in_queues} / {self.left_in_flight}"),
            *((f"orphaned {kind}", str(n)) for kind, n in sorted(self.orphans.items())),
            ("sessions stuck in deletion", str(self.stuck_deleting)),
            ("sessions not converged", str(len(self.not_converged))),
            ("converged after the last fault", f"{self.converged_after_last_fault_s} s"),
            ("Ready=True on a session that could not wake", str(len(self.false_ready))),
            *((f"faults: {k}", str(n)) for k, n in self.faults.items()),
            *(
                (f"RSS after the run: {k}", f"{v:.0f} MiB")
                for k, v in self.operator_rss_mib.items()
            ),
            *(
                (
                    f"after {k} alone: handled / status current",
                    f"{_s(v['handled'])} / {_s(v['status'])}",
                )
                for k, v in self.lag_s.items()
            ),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a.ljust(width)} | {b}" for a, b in rows)

    def as_json(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items() if k not in ("plan", "log")}
        body["lost"] = len(self.lost)
        body["not_converged"] = len(self.not_converged)
        body["false_ready"] = len(self.false_ready)
        return {"plan": self.plan.__dict__, "figures": body}


class Chaos:
    def __init__(self, cluster: LocalCluster, plan: Plan, log_dir: Path) -> None:
        self.cluster, self.plan, self.log_dir = cluster, plan, log_dir
        self.rng = random.Random(plan.seed)  # noqa: S311 (a seeded run, not a secret)
        self.api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.custom = client.CustomObjectsApi(self.api_client)
        self.report = Report(plan)
        self.sent: dict[str, str] = {}  # message id -> session
        self.live: list[str] = []  # sessions receiving messages
        self.disposable: list[str] = []
        self.deleted: list[str] = []
        self.suspended: set[str] = set()
        self.namespace = ""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.last_fault = time.monotonic()
        self.operators = Operators(cluster, log_dir)
        self.runner = PodRunner(self.api_client, log_dir / "workers")

    # -- Redis, with retries while it is down or paused --

    def redis(self) -> redis.Redis:
        return redis.Redis(
            host=self.cluster.redis_host,
            port=self.cluster.redis_port,
            password=self.cluster.redis_password,
            socket_timeout=5,
            socket_connect_timeout=2,
        )

    def say(self, line: str) -> None:
        stamped = f"[{time.strftime('%H:%M:%S')}] {line}"
        self.report.log.append(stamped)
        print(stamped, flush=True)

    # -- the run --

    def run(self) -> Report:
        (self.log_dir / "workers").mkdir(parents=True, exist_ok=True)
        with fresh_namespace(self.api_client, "chaos", self.cluster.redis_password) as ns:
            self.namespace = ns
            self.runner.namespace = ns
            self.runner.start()
            self.operators.ensure()
            injector = Injector(
                self.cluster, self.operators, self.runner, self.api_client, self.rng, self._burst
            )
            # The kubelet's part, for the whole run: a replica that lost its Lease
            # (an API server too slow to renew it, say) exits, and is started again.
            done = threading.Event()
            kubelet = threading.Thread(target=self._supervise, args=(injector, done), daemon=True)
            kubelet.start()
            try:
                self._setup()
                self._inject_while_sending(injector)
                self._finish()
                if self.plan.measure_lag:
                    self._measure_lags(injector)
            finally:
                done.set()
                kubelet.join(30)
                self.operators.stop()
                self.runner.stop()
        return self.report

    def _setup(self) -> None:
        plan = self.plan
        self.live = [f"s{i:04d}" for i in range(plan.sessions)]
        self.disposable = [f"d{i:04d}" for i in range(max(1, plan.sessions // 10))]
        self.say(f"creating {len(self.live)} sessions and {len(self.disposable)} disposable ones")
        for name in self.live + self.disposable:
            self._create(name)
        self._wait(lambda: self._ready_count() >= len(self.live) + len(self.disposable), 900)
        self.say("all Ready")

    def _create(self, name: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "UserSession",
            "metadata": {"name": name},
            "spec": {"userId": f"{name}@example.com", "workload": WORKLOAD, "scaling": SCALING},
        }
        persist(
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            ),
            done_if=409,  # a retry after a create that landed
        )

    def _delete(self, name: str) -> None:
        persist(
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            ),
            done_if=404,
        )

    def _patch(self, name: str, spec: dict[str, Any]) -> None:
        persist(lambda: patch_spec(self.api_client, self.namespace, name, spec))

    def _inject_while_sending(self, injector: Injector) -> None:
        plan = self.plan
        duration = plan.minutes * 60
        schedule = sorted(
            (self.rng.uniform(5, duration - 5), kind)
            for kind in KINDS
            for _ in range(plan.faults_per_kind)
        )
        threads = [
            threading.Thread(target=self._send_forever, daemon=True),
            threading.Thread(target=self._watch_ready, args=(injector,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        faulting: list[threading.Thread] = []
        for at, kind in schedule:
            time.sleep(max(0.0, started + at - time.monotonic()))

            def one(kind: str = kind) -> None:
                try:
                    self.say(injector.inject(kind))
                except Exception as exc:  # the harness's own trouble: say so, go on
                    self.say(f"{kind}: could not inject: {type(exc).__name__}: {exc}")
                finally:
                    self.last_fault = time.monotonic()

            # Faults overlap, as in production: each runs in its own thread.
            thread = threading.Thread(target=one, daemon=True)
            thread.start()
            faulting.append(thread)
        time.sleep(max(0.0, started + duration - time.monotonic()))
        for thread in faulting:
            thread.join(360)  # an API server restart may wait 300 s for readiness
        self._stop.set()
        for thread in threads:
            thread.join(30)
        self.report.faults = dict(injector.injected)

    def _send_forever(self) -> None:
        interval = 1.0 / self.plan.messages_per_second
        sequence = 0
        conn = self.redis()
        while not self._stop.wait(interval):
            with self._lock:
                session = self.rng.choice(self.live)
            message_id = f"chaos-{self.plan.seed}-{sequence:06d}"
            if not self._push(conn, session, message_id, until=self._stop):
                break
            self.sent[message_id] = session
            sequence += 1

    def _push(
        self,
        conn: redis.Redis,
        session: str,
        message_id: str,
        until: threading.Event | None = None,
    ) -> bool:
        """LPUSH one numbered chat message, retried while Redis is down or paused, as
        a producer would; False if `until` was set first."""
        message = {
            "id": message_id,
            "type": "chat",
            "text": message_id,
            "reply_to": LEDGER,
            "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        while True:
            try:
                conn.lpush(f"usersession:{self.namespace}:{session}", json.dumps(message))
                return True
            except redis.RedisError:
                if until is not None and until.is_set():
                    return False
                time.sleep(1)

    def _supervise(self, injector: Injector, done: threading.Event) -> None:
        while not done.wait(2):
            for name in injector.restart_exited_operators():
                self.say(f"{name} had exited: started again")

    def _burst(self) -> str:
        """Creates, deletes, suspends and spec edits, as users and GitOps make them."""
        changes = []
        with self._lock:
            for _ in range(3):
                name = f"n{len(self.live):04d}"
                self._create(name)
                self.live.append(name)
                changes.append(f"create {name}")
            for name in self.rng.sample(self.disposable, min(3, len(self.disposable))):
                self._delete(name)
                self.disposable.remove(name)
                self.deleted.append(name)
                changes.append(f"delete {name}")
            for name in self.rng.sample(self.live, 2):
                suspend = name not in self.suspended
                self._patch(name, {"suspend": suspend})
                (self.suspended.add if suspend else self.suspended.discard)(name)
                changes.append(f"{'suspend' if suspend else 'resume'} {name}")
            for name in self.rng.sample(self.live, 2):
                edit = [*WORKLOAD["env"], {"name": "CHAOS_EDIT", "value": str(time.time())}]
                self._patch(name, {"workload": {"env": edit}})
                changes.append(f"edit {name}")
        return ", ".join(changes)

    # -- "no Ready=True on a session that could not wake" --

    def _watch_ready(self, injector: Injector) -> None:
        """Sample every session's status and oldest waiting message: a sleeping session
        saying Ready=True while a message has waited past its start timeout is a lie."""
        # The bound the status promises: the start timeout from when a leader first saw
        # the work, so plus the time no leader ran (a failover) and a poll or two.
        limit = SCALING["startTimeoutSeconds"] + 45
        conn = self.redis()
        while not self._stop.wait(3):
            back_at = injector.apiserver_back_at
            if back_at is None:
                continue  # the API server restarts: status can be neither written nor read
            with contextlib.suppress(Exception):
                sessions = self._sessions()
                names = [s["metadata"]["name"] for s in sessions]
                pipe = conn.pipeline(transaction=False)
                for name in names:
                    pipe.lindex(f"usersession:{self.namespace}:{name}", -1)
                oldest = dict(zip(names, pipe.execute(), strict=True))
                now = time.time()
                for session in sessions:
                    name, status = session["metadata"]["name"], session.get("status") or {}
                    raw = oldest.get(name)
                    if raw is None or status.get("phase") != "Sleeping" or not _ready(status):
                        continue
                    # Counted from when status could change again: after an API
                    # server restart the operator relists before it writes (how long
                    # status then lags is the lag phase's measure).
                    waited = now - max(_sent_at(raw), back_at)
                    if waited > limit:
                        self.report.false_ready.append(
                            f"{name}: waited {waited:.0f} s at {time.strftime('%H:%M:%S')}"
                            f" (queueDepth {status.get('queueDepth')}, wakeStartedAt"
                            f" {status.get('wakeStartedAt')}, replicas {status.get('replicas')})"
                        )

    # -- the end --

    def _finish(self) -> None:
        self.say("faults over: every component up, suspended sessions resumed")
        self.operators.ensure()
        self.cluster.start_keda()
        self.cluster.start_redis()
        for name in list(self.suspended):
            self._patch(name, {"suspend": False})
        self.suspended.clear()
        last_fault = self.last_fault
        self.report.sent = len(self.sent)
        deadline = time.monotonic() + self.plan.converge_seconds
        conn = self.redis()

        def handled() -> Counter[str]:
            ids = Counter()
            for raw in conn.lrange(LEDGER, 0, -1):
                ids[json.loads(raw)["id"]] += 1
            return ids

        while time.monotonic() < deadline and not set(self.sent) <= set(handled()):
            time.sleep(2)
        done = handled()
        self.report.handled = sum(1 for m in self.sent if m in done)
        self.report.lost = sorted(m for m in self.sent if m not in done)
        self.report.duplicates = sum(n - 1 for m, n in done.items() if m in self.sent and n > 1)
        self.say(f"handled {self.report.handled} of {self.report.sent}")
        converged = self._wait(self._all_converged, max(30.0, deadline - time.monotonic()))
        if converged:
            self.report.converged_after_last_fault_s = round(time.monotonic() - last_fault, 1)
        self.report.not_converged = self._unconverged()
        for name in self.live:
            queue = f"usersession:{self.namespace}:{name}"
            self.report.left_in_queues += int(conn.llen(queue))
            self.report.left_in_flight += int(conn.llen(processing_key(queue)))
        self._check_deleted(conn)
        self.report.operator_rss_mib = self.operators.rss_mib()

    def _measure_lags(self, injector: Injector) -> None:
        """Each fault alone in a quiet cluster: from its end, how long until a message
        sent to a sleeping session then is handled, and every status is current."""
        conn = self.redis()
        for kind in KINDS:
            self._wait(self._all_converged, 300)
            probe = f"lag-{kind}"
            asleep = [
                s["metadata"]["name"]
                for s in self._sessions()
                if (s.get("status") or {}).get("phase") == "Sleeping"
                and s["metadata"]["name"] in self.live
            ]
            target = self.rng.choice(asleep or self.live)
            # A quiet cluster runs no worker: the probe goes first so that the killed
            # worker is the one holding it, and "handled" times its redelivery.
            if kind == "kill_worker":
                self._push(conn, target, probe)
            try:
                said = injector.inject(kind)
            except RuntimeError as exc:
                self.report.lag_s[kind] = {"handled": None, "status": None}
                self.say(f"alone: {kind}: not measured: {exc}")
                continue
            ended = time.monotonic()
            if kind != "kill_worker":
                self._push(conn, target, probe)
            handled = self._wait(lambda p=probe: _in_ledger(conn, p), 300)
            handled_s = time.monotonic() - ended if handled else None
            current = self._wait(self._all_converged, 300)
            status_s = time.monotonic() - ended if current else None
            self.report.lag_s[kind] = {"handled": _round(handled_s), "status": _round(status_s)}
            self.say(f"alone: {said}; handled after {_s(handled_s)}, status after {_s(status_s)}")

    def _all_converged(self) -> bool:
        return not self._unconverged()

    def _unconverged(self) -> list[str]:
        wrong = []
        by_name = {s["metadata"]["name"]: s for s in self._sessions()}
        for name in self.live:
            session = by_name.get(name)
            status = (session or {}).get("status") or {}
            generation = (session or {}).get("metadata", {}).get("generation")
            if not (
                status.get("phase") in ("Sleeping", "Running")
                and _ready(status)
                and status.get("queueDepth") == 0
                and status.get("processingDepth") == 0
                and status.get("observedGeneration") == generation
            ):
                wrong.append(f"{name}: {status.get('phase')} {_reason(status)}")
        return wrong

    def _check_deleted(self, conn: redis.Redis) -> None:
        apps, core = client.AppsV1Api(self.api_client), client.CoreV1Api(self.api_client)
        autoscaling = client.AutoscalingV2Api(self.api_client)
        gone = set(self.deleted)
        ns = self.namespace

        def named(items: list[Any]) -> int:
            return sum(1 for item in items if item.metadata.name in gone)

        def custom(group: str, plural: str) -> int:
            listed: Any = self.custom.list_namespaced_custom_object(group, "v1alpha1", ns, plural)
            return sum(1 for item in listed["items"] if item["metadata"]["name"] in gone)

        hpas = autoscaling.list_namespaced_horizontal_pod_autoscaler(ns).items
        self.report.orphans = {
            "Deployments": named(apps.list_namespaced_deployment(ns).items),
            "ScaledObjects": custom("keda.sh", "scaledobjects"),
            "TriggerAuthentications": custom("keda.sh", "triggerauthentications"),
            "HPAs": sum(1 for h in hpas if h.metadata.name.removeprefix("keda-hpa-") in gone),
            "PVCs": named(core.list_namespaced_persistent_volume_claim(ns).items),
            "Redis keys": sum(
                len(conn.keys(f"usersession:{ns}:{name}*".encode())) for name in gone
            ),
        }
        self.report.stuck_deleting = sum(
            1 for s in self._sessions() if s["metadata"].get("deletionTimestamp")
        )

    # -- reads --

    def _sessions(self) -> list[dict[str, Any]]:
        listed: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        return list(listed["items"])

    def _ready_count(self) -> int:
        return sum(1 for s in self._sessions() if _ready(s.get("status") or {}))

    def _wait(self, condition: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # the API server may be restarting
                if condition():
                    return True
            time.sleep(2)
        return False


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _in_ledger(conn: redis.Redis, message_id: str) -> bool:
    return any(json.loads(raw)["id"] == message_id for raw in conn.lrange(LEDGER, 0, -1))


def _s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"


def _ready(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _reason(status: dict[str, Any]) -> str:
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return f"{ready.get('reason')}: {ready.get('message', '')[:80]}"


def _sent_at(raw: bytes) -> float:
    try:
        stamp = json.loads(raw)["sent_at"]
        return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except (ValueError, KeyError, TypeError):
        return time.time()
