"""The session API served on a loopback port, next to the real operator, cluster and Redis.

The API runs in this process on its own event loop in a thread (so tests can
stay synchronous), and the reference worker runs as a real subprocess, standing
in for the session's pod, which no KEDA starts here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kubernetes import client

from support.namespaces import fresh_namespace
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.sessionapi.app import create_app

from .harness import ADMIN_TOKEN, ALICE_TOKEN, Http, Served, Worker, api_settings


@pytest.fixture(scope="module")
def api_namespace(cluster: LocalCluster, api_client: client.ApiClient) -> Iterator[str]:
    """One namespace for a module's API: the API serves exactly one namespace."""
    with fresh_namespace(api_client, "api", cluster.redis_password) as name:
        yield name


@pytest.fixture(scope="module")
def served(
    cluster: LocalCluster, api_client: client.ApiClient, api_namespace: str
) -> Iterator[Served]:
    app = create_app(api_settings(cluster, api_namespace), api_client=api_client)
    with Served(app) as running:
        # Ready once the session cache has synced: tests start from a healthy API.
        wait_for(lambda: Http(running.base).call("GET", "/health").status_code == 200, 30)
        yield running


@pytest.fixture
def alice(served: Served) -> Http:
    return Http(served.base, ALICE_TOKEN)


@pytest.fixture
def admin(served: Served) -> Http:
    return Http(served.base, ADMIN_TOKEN)


@pytest.fixture
def start_worker(cluster: LocalCluster) -> Iterator[Callable[[str], Worker]]:
    workers: list[Worker] = []

    def start(queue: str) -> Worker:
        worker = Worker(cluster, queue)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        if worker.process.poll() is None:
            worker.stop()
