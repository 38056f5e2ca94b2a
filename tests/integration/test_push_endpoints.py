"""The push Service's endpoint, written by the operator (leadership/endpoints.py), for real.

A real `usersession-operator run` process, as the Helm chart's ServiceAccount and
with the chart's settings, against the real API server: it publishes its POD_IP and
push port as the selector-less push Service's only endpoint once it serves the
port, and removes it on a graceful stop. Failover between two replicas, with the
slice following the new leader, is in test_leader_election.py.
"""

from __future__ import annotations

import signal
import socket
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from support.chart import RELEASE_NAMESPACE, service_account_kubeconfig
from support.operators import logs, operators, push_endpoint, push_env, start_operator
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for

TIMEOUT = 60
# The slice only records the address (nothing here routes by it), and the API server
# refuses loopback ones in an EndpointSlice: a documentation address (RFC 5737) it is.
POD_IP = "192.0.2.10"


@pytest.fixture
def lease() -> str:
    return f"uso-push-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def chart_kubeconfig(
    cluster: LocalCluster, tmp_path: Path, session_namespace: str, lease: str
) -> Path:
    """The chart's ServiceAccount and RBAC, for this test's namespace and Lease."""
    return service_account_kubeconfig(
        cluster,
        tmp_path / "kubeconfig",
        "--set",
        f"watchNamespaces[0]={session_namespace}",
        "--set",
        f"leaderElection.leaseName={lease}",
    )


def serves(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("election", ["off", "on"])
def test_the_operator_publishes_itself_as_the_push_endpoint_and_withdraws_on_stop(
    cluster: LocalCluster,
    api_client: client.ApiClient,
    session_namespace: str,
    push_service: str,
    chart_kubeconfig: Path,
    tmp_path: Path,
    lease: str,
    election: str,
) -> None:
    env = push_env(push_service, RELEASE_NAMESPACE, POD_IP)
    port = int(env["USERSESSION_PUSH_PORT"])
    with operators() as started:
        op = start_operator(
            cluster,
            "push-0",
            tmp_path,
            lease=lease,
            lease_namespace=RELEASE_NAMESPACE,
            namespaces=(session_namespace,),
            kubeconfig=chart_kubeconfig,
            env={**env, "USERSESSION_LEADER_ELECTION": election},
        )
        started.append(op)
        try:
            published = wait_for(
                lambda: push_endpoint(api_client, RELEASE_NAMESPACE, push_service), TIMEOUT
            )
        except TimeoutError:
            raise AssertionError(logs(op)) from None
        assert published == ([POD_IP], [port])
        assert serves(port), "published before serving:\n" + logs(op)
        wait_for(lambda: f"now routes to this replica ({POD_IP}:" in op.log(), 10)

        slice_ = client.DiscoveryV1Api(api_client).read_namespaced_endpoint_slice(
            push_service, RELEASE_NAMESPACE
        )
        service = client.CoreV1Api(api_client).read_namespaced_service(
            push_service, RELEASE_NAMESPACE
        )
        assert slice_.metadata.labels == {
            "kubernetes.io/service-name": push_service,
            "endpointslice.kubernetes.io/managed-by": "usersession-operator",
        }
        [owner] = slice_.metadata.owner_references
        assert (owner.kind, owner.uid) == ("Service", service.metadata.uid)
        assert [p.name for p in slice_.ports] == [p.name for p in service.spec.ports]
        assert slice_.endpoints[0].target_ref.name == "push-0"

        op.signal(signal.SIGTERM)
        assert op.wait(30) == 0, logs(op)
        assert push_endpoint(api_client, RELEASE_NAMESPACE, push_service) is None, logs(op)
        assert "Removed this replica from the push Service" in op.log()


def test_an_endpoint_it_cannot_write_is_logged_and_the_operator_runs_on(
    cluster: LocalCluster,
    api_client: client.ApiClient,
    session_namespace: str,
    chart_kubeconfig: Path,
    tmp_path: Path,
    lease: str,
) -> None:
    # A Service the chart's Role does not name: refused, said why, retried, not fatal.
    env = push_env("someone-elses-push", RELEASE_NAMESPACE, POD_IP)
    with operators() as started:
        op = start_operator(
            cluster,
            "push-refused",
            tmp_path,
            lease=lease,
            lease_namespace=RELEASE_NAMESPACE,
            namespaces=(session_namespace,),
            kubeconfig=chart_kubeconfig,
            env={**env, "USERSESSION_LEADER_ELECTION": "off"},
        )
        started.append(op)
        try:
            wait_for(lambda: "Cannot publish this replica" in op.log(), TIMEOUT)
            wait_for(op.healthy, TIMEOUT)
        except TimeoutError:
            raise AssertionError(logs(op)) from None
        text = op.log()
        assert "ERROR" in text and "403" in text and "-push-endpoints Role" in text, text
        assert serves(int(env["USERSESSION_PUSH_PORT"]))
        assert op.process.poll() is None
        op.signal(signal.SIGTERM)
        assert op.wait(30) == 0, logs(op)
