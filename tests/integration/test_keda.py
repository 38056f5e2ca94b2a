"""KEDA is the actor: the real KEDA operator scales sessions on their real Redis lists.

Nothing here scales a Deployment by hand. Sessions poll every second and sleep
after five idle seconds (FAST_SCALING), so each wake and sleep takes seconds.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import redis
from kubernetes import client

from support.namespaces import fresh_namespace
from support.sessions import FAST_SCALING, Api, condition, unique
from usersession_localstack.cluster import LocalCluster

pytestmark = pytest.mark.usefixtures("operator")


def test_a_message_wakes_the_session_and_an_empty_queue_puts_it_back_to_sleep(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name, scaling=FAST_SCALING)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert condition(status, "Ready")["status"] == "True"
    api.wait_status(ns, name, lambda s: condition(s, "ScalerReady")["status"] == "True")

    rds.lpush(status["queueName"], '{"type": "wake"}')
    api.wait_replicas(ns, name, 1, timeout=20)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Running")
    assert status["pod"]["ready"] is True
    assert condition(status, "Ready")["status"] == "True"

    rds.delete(status["queueName"])  # what a worker does with it
    emptied = time.monotonic()
    api.wait_replicas(ns, name, 0, timeout=30)
    slept_after = time.monotonic() - emptied
    # KEDA waits out the idle timeout (cooldownPeriod) before scaling to zero.
    assert slept_after >= FAST_SCALING["idleTimeoutSeconds"] - 1, slept_after
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping" and "pod" not in s)


def test_suspend_holds_a_session_at_zero_with_messages_waiting_and_resuming_wakes_it(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name, suspend=True, scaling=FAST_SCALING)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Suspended")
    rds.lpush(status["queueName"], '{"type": "wake"}')
    api.wait_status(ns, name, lambda s: s.get("queueDepth") == 1)
    # Several KEDA polling intervals with a message waiting: still asleep.
    time.sleep(4 * FAST_SCALING["pollingIntervalSeconds"])
    assert api.replicas(ns, name) == 0
    assert api.session(ns, name)["status"]["phase"] == "Suspended"  # type: ignore[index]

    api.patch_spec(ns, name, {"suspend": False})
    api.wait_replicas(ns, name, 1, timeout=20)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running")


@pytest.fixture
def wrong_password_namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A namespace whose Redis Secret holds a password Redis refuses."""
    with fresh_namespace(api_client, "wrongpass", "not-the-password") as name:
        yield name


def test_a_wrong_password_is_reported_and_fixing_the_secret_recovers_without_restarts(
    api: Api, wrong_password_namespace: str, rds: redis.Redis, cluster: LocalCluster
) -> None:
    ns, name = wrong_password_namespace, unique()
    api.create(ns, name, scaling=FAST_SCALING)
    queue = f"usersession:{ns}:{name}"
    rds.lpush(queue, '{"type": "wake"}')

    # The seed's bug: this session said Ready=True, "the next message wakes it".
    status = api.wait_status(
        ns, name, lambda s: condition(s, "ScalerReady")["status"] == "False", timeout=45
    )
    assert status["phase"] == "Degraded"
    ready = condition(status, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] in ("ScalerFailed", "RedisUnreachable"), ready
    scaler = condition(status, "ScalerReady")
    assert "WRONGPASS" in scaler["message"] or "invalid" in scaler["message"].lower(), scaler
    warnings = [
        e
        for e in api.core.list_namespaced_event(ns).items
        if e.type == "Warning" and e.involved_object.name == name
    ]
    assert {e.reason for e in warnings} & {"ScalerFailed", "RedisUnreachable"}, [
        (e.reason, e.message) for e in warnings
    ]
    assert api.replicas(ns, name) == 0

    api.core.patch_namespaced_secret(
        "redis-auth",
        ns,
        {"data": {"password": base64.b64encode(cluster.redis_password.encode()).decode()}},
    )
    # Neither KEDA nor the operator is restarted: both pick the new password up.
    api.wait_replicas(ns, name, 1, timeout=60)
    status = api.wait_status(
        ns,
        name,
        lambda s: s.get("phase") == "Running" and condition(s, "Ready")["status"] == "True",
        timeout=30,
    )
    assert condition(status, "ScalerReady")["status"] == "True"
