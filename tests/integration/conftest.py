"""One real control plane + Redis for the whole integration run.

Starting it costs seconds, so it is session-scoped; tests isolate themselves
with their own namespaces instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config
from kubernetes.config import kube_config

from usersession_operator.localcluster import LocalCluster
from usersession_operator.localcluster.cluster import wait_for
from usersession_operator.localcluster.manifests import install_crds


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster() as local:
        install_crds(local)
        previous = os.environ.get("KUBECONFIG"), kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        # kopf (inside KopfRunner) and the kubernetes client both read this; the
        # client library copies KUBECONFIG into a module constant at import time.
        os.environ["KUBECONFIG"] = kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(local.kubeconfig)
        try:
            yield local
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = previous[1]
            if previous[0] is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous[0]


@pytest.fixture(scope="session")
def api_client(cluster: LocalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods are refused until the ServiceAccount controller has made "default".
    wait_for(lambda: core.list_namespaced_service_account(name).items, timeout=30)
    try:
        yield name
    finally:
        core.delete_namespace(name)
