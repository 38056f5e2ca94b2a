"""What sessions cost the API server: the operator's writes for a new session, and none
for a restart over unchanged ones. Counted from the real API server's audit log, by
the operator's user agents (support/audit.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import redis
from kopf.testing import KopfRunner

from support import audit
from support.sessions import FAST_SCALING, Api, condition, unique
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port
from usersession_localstack.process import environment


@contextlib.contextmanager
def running_operator(cluster: LocalCluster) -> Iterator[KopfRunner]:
    """The real operator, started and stopped by the test itself."""
    env = {
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_POLL_INTERVAL": "1",
        "USERSESSION_METRICS_PORT": str(free_port()),
        "USERSESSION_PUSH_PORT": None,
        "USERSESSION_PUSH_ADDRESS": None,
    }
    args = ["run", "--standalone", "--all-namespaces", "-m", "usersession_operator.handlers"]
    with environment(env), KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output


def _ready_and_sleeping(api: Api, namespace: str, name: str) -> None:
    """Sleeping, Ready, and KEDA's verdict in: nothing left to change by itself."""
    api.wait_status(
        namespace,
        name,
        lambda s: (
            s.get("phase") == "Sleeping"
            and condition(s, "Ready").get("status") == "True"
            and condition(s, "ScalerReady").get("status") == "True"
        ),
    )


def test_a_new_session_costs_six_writes_at_most_each_one_named(
    cluster: LocalCluster, api: Api, session_namespace: str
) -> None:
    ns, name = session_namespace, unique()
    with running_operator(cluster):
        since = audit.offset(cluster)
        api.create(ns, name, scaling=FAST_SCALING)
        _ready_and_sleeping(api, ns, name)
        time.sleep(3)  # anything written after Ready would land meanwhile
        writes = audit.by_resource(audit.writes(cluster, since, ns))
    # docs/architecture.md's list: the finalizer, one apply per child, the first status and
    # the one that says KEDA is ready.
    assert writes["usersessions"] == 1, writes  # the finalizer, nothing else
    assert writes["triggerauthentications"] == 1, writes
    assert writes["deployments"] == 1, writes  # created by the seed, replicas 0
    assert writes["scaledobjects"] == 1, writes
    assert writes["usersessions/status"] <= 2, writes
    assert sum(writes.values()) <= 6, writes
    session = api.session(ns, name)
    assert session is not None
    kept = [k for k in session["metadata"].get("annotations") or {} if "sessions.ai-infra.dev" in k]
    assert kept == [], "no bookkeeping of ours belongs in the object"


def test_a_restart_writes_nothing_for_unchanged_sessions_and_catches_up_on_changed_ones(
    cluster: LocalCluster, api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns = session_namespace
    names = [unique() for _ in range(3)]
    with running_operator(cluster):
        for name in names:
            api.create(ns, name, scaling=FAST_SCALING)
        for name in names:
            _ready_and_sleeping(api, ns, name)
    # While the operator is away, work arrives for one session.
    busy, *unchanged = names
    status = api.session(ns, busy)
    assert status is not None
    queue = status["status"]["queueName"]
    rds.lpush(queue, "while-away")
    try:
        since = audit.offset(cluster)
        with running_operator(cluster):
            api.wait_status(
                ns,
                busy,
                lambda s: (
                    s.get("queueDepth", 0) + s.get("processingDepth", 0) >= 1
                    or s.get("phase") in ("Waking", "Running")
                ),
            )
            time.sleep(5)  # five poll cycles, and every watch listed
        entries = audit.writes(cluster, since, ns)
    finally:
        rds.delete(queue)
    touched = {
        (e["objectRef"].get("resource"), e["objectRef"].get("name"))
        for e in entries
        if e["objectRef"].get("name") in unchanged
    }
    assert touched == set(), f"a restart wrote to unchanged sessions: {entries}"
