"""The finalizer's give-up policy: deletion never hangs on a Redis that does not come back."""

from __future__ import annotations

import uuid

import pytest
import redis
from kubernetes import client
from kubernetes.client import ApiException

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.session.model import GROUP, PLURAL, VERSION

pytestmark = pytest.mark.usefixtures("operator")

OPERATOR_ENV = {"USERSESSION_CLEANUP_TIMEOUT": "4"}


def test_deletion_gives_up_on_redis_after_the_timeout_and_says_what_was_left(
    api_client: client.ApiClient, session_namespace: str, cluster: LocalCluster
) -> None:
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    ns, name = session_namespace, f"s-{uuid.uuid4().hex[:8]}"
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        ns,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "UserSession",
            "metadata": {"name": name},
            "spec": {"userId": "bob@example.com", "workload": {"image": "example.com/w:1"}},
        },
    )

    def status() -> dict[str, object]:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
        return dict(obj.get("status") or {})

    queue = str(
        wait_for(
            lambda: status().get("queueName") if "queueDepth" in status() else None, timeout=30
        )
    )
    rds = redis.Redis(
        host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
    )
    rds.lpush(queue, "left behind")

    cluster.stop_redis()
    try:
        custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)

        def gone() -> bool:
            try:
                custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for(gone, timeout=60)
    finally:
        cluster.start_redis()

    reasons = {
        e.reason: e for e in core.list_namespaced_event(ns).items if e.involved_object.name == name
    }
    assert "RedisCleanupFailed" in reasons, "retries come before giving up"
    abandoned = reasons["RedisCleanupAbandoned"]
    assert abandoned.type == "Warning"
    assert queue in abandoned.message
    assert rds.exists(queue) == 1, "the keys were really left behind, as the event says"
    rds.delete(queue)
