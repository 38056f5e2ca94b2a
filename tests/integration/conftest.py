"""One real control plane + Redis for the whole integration run.

Starting it costs seconds, so it is session-scoped; tests isolate themselves
with their own namespaces instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import redis
from kopf.testing import KopfRunner
from kubernetes import client, config
from kubernetes.config import kube_config

from support.logs import Collect
from support.namespaces import fresh_namespace
from support.sessions import Api
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port
from usersession_localstack.process import environment


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    # audit=True: tests count the operator's writes by its user agent (support/audit.py).
    with LocalCluster(audit=True) as local, environment({"KUBECONFIG": str(local.kubeconfig)}):
        # kopf (inside KopfRunner) and the kubernetes client both read KUBECONFIG;
        # the client library copies it into a module constant at import time.
        previous = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(local.kubeconfig)
        try:
            yield local
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = previous


@pytest.fixture(scope="session")
def api_client(cluster: LocalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    with fresh_namespace(api_client, "test") as name:
        yield name


@pytest.fixture(scope="module")
def operator(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[KopfRunner]:
    """The real operator (all of its handlers) in a thread, via kopf's test runner.

    With USERSESSION_TEST_OPERATOR_IDENTITY=chart it runs with a token of the
    Helm chart's ServiceAccount and only the chart's RBAC, as it would in a pod:
    the same tests then prove the chart's permissions are sufficient.
    """
    push = free_port()
    env = {
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_POLL_INTERVAL": "1",
        "USERSESSION_METRICS_PORT": str(free_port()),
        "USERSESSION_LOG_LEVEL": "DEBUG",
        # The fast-wake path on, as the Helm chart has it.
        "USERSESSION_PUSH_PORT": str(push),
        "USERSESSION_PUSH_ADDRESS": f"127.0.0.1:{push}",
    }
    # A test module may set OPERATOR_ENV to run the operator with other settings,
    # or make it a function of the request, to derive them from its own fixtures.
    extra = getattr(request.module, "OPERATOR_ENV", {})
    env.update(extra(request) if callable(extra) else extra)
    if os.environ.get("USERSESSION_TEST_OPERATOR_IDENTITY") == "chart":
        from support.chart import service_account_kubeconfig

        path = tmp_path_factory.mktemp("operator-identity") / "kubeconfig"
        # A module may name the chart values its sessions need (the Secrets they name).
        values = getattr(request.module, "OPERATOR_CHART_VALUES", ())
        env["KUBECONFIG"] = str(service_account_kubeconfig(cluster, path, *values))
    args = [
        "run",
        "--standalone",
        "--all-namespaces",
        "--verbose",
        "-m",
        "usersession_operator.handlers",
    ]
    with environment(env), KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output


@pytest.fixture
def session_namespace(cluster: LocalCluster, api_client: client.ApiClient) -> Iterator[str]:
    """A namespace holding the Redis Secret that sessions reference by default."""
    with fresh_namespace(api_client, "test", cluster.redis_password) as name:
        yield name


@pytest.fixture(scope="session")
def api(api_client: client.ApiClient) -> Api:
    return Api(api_client)


@pytest.fixture
def rds(cluster: LocalCluster) -> Iterator[redis.Redis]:
    conn = redis.Redis(
        host=cluster.redis_host,
        port=cluster.redis_port,
        password=cluster.redis_password,
        decode_responses=True,
    )
    yield conn
    conn.close()


@pytest.fixture
def notifications_off(rds: redis.Redis) -> Iterator[None]:
    """Redis without keyspace notifications, as it comes by default, for one test."""
    before = rds.config_get("notify-keyspace-events")["notify-keyspace-events"]
    rds.config_set("notify-keyspace-events", "")
    yield
    rds.config_set("notify-keyspace-events", before)


@pytest.fixture
def operator_log() -> Iterator[Collect]:
    """Every log line the operator and the session API (both in this process) write
    meanwhile, at DEBUG."""
    collect = Collect()
    collect.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(collect)
    root.setLevel(logging.DEBUG)
    yield collect
    root.removeHandler(collect)
    root.setLevel(old_level)


@pytest.fixture
def push_service(cluster: LocalCluster, api_client: client.ApiClient) -> Iterator[str]:
    """The chart's push Service (no selector) in the release namespace, fresh, with no
    EndpointSlice; both deleted afterwards. Its name is the one the chart's RBAC names."""
    from support.chart import RELEASE, RELEASE_NAMESPACE, ensure_namespace

    name = f"{RELEASE}-usersession-operator-push"
    ensure_namespace(cluster, RELEASE_NAMESPACE)
    core, discovery = client.CoreV1Api(api_client), client.DiscoveryV1Api(api_client)

    def delete() -> None:
        for remove in (core.delete_namespaced_service, discovery.delete_namespaced_endpoint_slice):
            try:
                remove(name, RELEASE_NAMESPACE)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise

    delete()
    service = {
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "grpc", "port": 9443, "appProtocol": "grpc"}]},
    }
    core.create_namespaced_service(RELEASE_NAMESPACE, service)
    yield name
    delete()
