"""Redis or the Kubernetes API unavailable: 503 with a JSON error, nothing half-done."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from kubernetes import client

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for
from usersession_operator.session.model import GROUP, PLURAL, VERSION
from usersession_operator.sessionapi.app import create_app

from .harness import ALICE_TOKEN, Http, Served, api_settings, create_sleeping

pytestmark = pytest.mark.usefixtures("operator")


def test_redis_down_is_503_json_and_health_says_which(alice: Http, cluster: LocalCluster) -> None:
    sid = create_sleeping(alice)["id"]
    assert alice.call("GET", "/health").json()["redis"] == {"ok": True}
    cluster.stop_redis()
    try:
        for method, path, body in [
            ("POST", f"/session/{sid}/wake", None),
            ("POST", f"/session/{sid}/chat", {"message": "hi"}),
            ("POST", f"/session/{sid}/sleep", None),
        ]:
            response = alice.call(method, path, body)
            assert response.status_code == 503, (path, response.text)
            error = response.json()["error"]
            assert error["code"] == "redis_unavailable"
            assert cluster.redis_password not in response.text
            assert "Traceback" not in response.text
        health = alice.call("GET", "/health")
        assert health.status_code == 503
        assert health.json()["redis"]["ok"] is False
        assert alice.call("GET", "/livez").status_code == 200
        # Still ready: it stays in its Service, and answers the 503s above itself.
        assert alice.call("GET", "/readyz").status_code == 200
        assert health.json()["kubernetes"] == {"ok": True}
        # Reads come from the cache and do not need Redis.
        assert alice.call("GET", f"/session/{sid}/status").status_code == 200
    finally:
        cluster.start_redis()
    wait_for(lambda: alice.call("GET", "/health").status_code == 200, timeout=20)


@pytest.fixture
def unreachable_kubernetes(cluster: LocalCluster, api_namespace: str) -> Iterator[Http]:
    """The API pointed at a port where no API server listens."""
    config = copy.copy(client.Configuration.get_default_copy())
    config.host = f"https://127.0.0.1:{free_port()}"
    config.verify_ssl = False
    app = create_app(api_settings(cluster, api_namespace), api_client=client.ApiClient(config))
    with Served(app) as running:
        yield Http(running.base, ALICE_TOKEN)


def test_kubernetes_down_is_503_json_and_creates_nothing(
    unreachable_kubernetes: Http, alice: Http, api_client: client.ApiClient, api_namespace: str
) -> None:
    api = unreachable_kubernetes
    before = _names(api_client, api_namespace)
    created = api.call("POST", "/session/create", {})
    assert created.status_code == 503, created.text
    assert created.json()["error"]["code"] == "kubernetes_unavailable"
    assert _names(api_client, api_namespace) == before
    # Reads cannot be served from a cache that never synced.
    listed = api.call("GET", "/sessions")
    assert listed.status_code == 503
    assert listed.json()["error"]["code"] == "kubernetes_unavailable"
    health = api.call("GET", "/health")
    assert health.status_code == 503
    assert health.json()["kubernetes"]["ok"] is False
    # The Redis password lives in a Secret, so without Kubernetes Redis is out of reach too.
    assert health.json()["redis"]["ok"] is False
    assert "Secret" in health.json()["redis"]["error"]


def _names(api_client: client.ApiClient, namespace: str) -> set[str]:
    listing = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )
    return {item["metadata"]["name"] for item in listing["items"]}
