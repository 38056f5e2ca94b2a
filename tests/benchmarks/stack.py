"""What every benchmark starts with: the local stack, a namespace, the real operator.

Benchmarks run as scripts (`.venv/bin/python tests/benchmarks/bench_x.py`), so
this sits beside them and is imported as `stack`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from kopf.testing import KopfRunner
from kubernetes import client, config

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for
from usersession_localstack.process import environment

KOPF_ARGS = ["run", "--standalone", "-A", "-m", "usersession_operator.handlers"]


def api_client(cluster: LocalCluster) -> client.ApiClient:
    made: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)
    )
    return made


def namespace(cluster: LocalCluster) -> str:
    """A fresh namespace holding the Redis Secret sessions use by default."""
    core = client.CoreV1Api(api_client(cluster))
    name = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    # Pods are refused until the ServiceAccount controller has made "default".
    wait_for(lambda: core.list_namespaced_service_account(name).items, 30)
    secret = {"metadata": {"name": "redis-auth"}}
    core.create_namespaced_secret(
        name, {**secret, "stringData": {"password": cluster.redis_password}}
    )
    return name


@contextlib.contextmanager
def operator(cluster: LocalCluster, **settings: str) -> Iterator[KopfRunner]:
    """The real operator in this process, under kopf's runner; USERSESSION_* settings
    by keyword. Fresh metrics and health ports each time, so a benchmark can run it
    more than once; a failure inside it is raised, not swallowed."""
    env: dict[str, str | None] = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_METRICS_PORT": str(free_port()),
        "USERSESSION_LIVENESS_PORT": str(free_port()),
        # The fast path only when this run asks for it.
        "USERSESSION_PUSH_PORT": None,
        "USERSESSION_PUSH_ADDRESS": None,
        **settings,
    }
    with environment(env), KopfRunner(KOPF_ARGS, timeout=60) as runner:
        yield runner
    if runner.exception is not None:
        raise runner.exception
