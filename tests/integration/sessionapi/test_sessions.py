"""Session lifecycle through the API: real operator, API server, Redis and worker process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
from kubernetes import client

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.session.model import GROUP, PLURAL, VERSION

from .harness import Http, Worker, create_sleeping

pytestmark = pytest.mark.usefixtures("operator")


def test_create_makes_a_usersession_that_reaches_sleeping(
    alice: Http, api_client: client.ApiClient, api_namespace: str
) -> None:
    status = create_sleeping(alice, env={"MODEL": "small"})
    obj = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, api_namespace, PLURAL, status["id"]
    )
    assert obj["spec"]["userId"] == "alice@example.com"
    assert obj["spec"]["workload"]["env"] == [{"name": "MODEL", "value": "small"}]
    assert status["queue_name"] == f"usersession:{api_namespace}:{status['id']}"
    assert status["observed_generation"] == 1
    assert status["pod"] is None
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_create_with_storage_and_an_expiry_reaches_the_usersession(
    alice: Http, api_client: client.ApiClient, api_namespace: str
) -> None:
    status = create_sleeping(
        alice, storage={"size": "2Gi", "mount_path": "/work"}, expire_after_idle_seconds=3600
    )
    obj = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, api_namespace, PLURAL, status["id"]
    )
    assert obj["spec"]["expireAfterIdleSeconds"] == 3600
    assert obj["spec"]["storage"]["size"] == "2Gi"
    assert obj["spec"]["storage"]["mountPath"] == "/work"
    # No default StorageClass here, so the claim waits: asleep, it does not need it yet.
    assert status["storage"] == {"claim": status["id"], "phase": "Pending"}
    refused = alice.call("POST", "/session/create", {"storage": {"size": "-1Gi"}})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "storage.size"


def test_chat_round_trip_returns_the_workers_reply(
    alice: Http, start_worker: Callable[[str], Worker], rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    start_worker(status["queue_name"])
    answer = alice.call("POST", f"/session/{status['id']}/chat", {"message": "héllo 👋"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["reply"] == "echo: héllo 👋"
    assert body["status"] == "replied"
    # The worker took it through the processing list and left nothing there.
    assert rds.llen(status["queue_name"]) == 0
    assert rds.llen(status["queue_name"] + ":processing") == 0
    # The reply stays collectable after it was returned.
    again = alice.call("GET", f"/session/{status['id']}/reply/{body['message_id']}")
    assert again.status_code == 200
    assert again.json()["reply"] == "echo: héllo 👋"


def test_chat_without_a_worker_is_202_and_delivered_once_it_starts(
    alice: Http, start_worker: Callable[[str], Worker], rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    sid, queue = status["id"], status["queue_name"]
    started = time.monotonic()
    pending = alice.call("POST", f"/session/{sid}/chat?wait=0.5", {"message": "anyone?"})
    assert pending.status_code == 202, pending.text
    assert 0.5 <= time.monotonic() - started < 5
    message_id = pending.json()["message_id"]
    reply_url = pending.json()["reply_url"]
    assert reply_url == f"/session/{sid}/reply/{message_id}"
    # Still queued, in the documented wire format.
    [raw] = rds.lrange(queue, 0, -1)
    message = json.loads(raw)
    assert message["id"] == message_id
    assert message["type"] == "chat"
    assert message["text"] == "anyone?"
    assert message["reply_to"] == f"{queue}:reply:{message_id}"
    assert alice.call("GET", reply_url).status_code == 202

    worker = start_worker(queue)
    collected = wait_for(
        lambda: (r := alice.call("GET", reply_url)).status_code == 200 and r.json(), timeout=20
    )
    assert collected["reply"] == "echo: anyone?"
    code, output = worker.stop()
    assert code == 0, output


def test_unknown_message_id_is_404(alice: Http) -> None:
    status = create_sleeping(alice)
    missing = alice.call(
        "GET", f"/session/{status['id']}/reply/00000000-0000-4000-8000-000000000000"
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "message_not_found"


def test_worker_finishes_the_message_in_hand_on_sigterm_and_recovers_leftovers(
    cluster: LocalCluster, start_worker: Callable[[str], Worker], rds: redis.Redis
) -> None:
    queue = "usersession:worker-test:leftovers"
    reply_to = f"{queue}:reply:m1"
    left = json.dumps({"id": "m1", "type": "chat", "text": "left", "reply_to": reply_to})
    rds.lpush(f"{queue}:processing", left)  # taken by a run that was killed
    rds.lpush(queue, json.dumps({"id": "w1", "type": "wake", "text": None, "reply_to": None}))
    worker = start_worker(queue)
    wait_for(lambda: rds.exists(reply_to) and rds.llen(queue) == 0, timeout=20)
    assert json.loads(rds.lindex(reply_to, 0) or "{}")["text"] == "echo: left"
    assert 0 < rds.ttl(reply_to) <= 3600
    code, output = worker.stop()
    assert code == 0, output
    assert rds.llen(f"{queue}:processing") == 0
    rds.delete(reply_to)


def test_wake_queues_a_message_unless_running(
    alice: Http, api_client: client.ApiClient, api_namespace: str, rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    sid = status["id"]
    woken = alice.call("POST", f"/session/{sid}/wake").json()
    assert woken["queued"] is True
    assert woken["phase"] == "Sleeping"
    assert json.loads(rds.lindex(status["queue_name"], 0) or "{}")["type"] == "wake"

    # KEDA sees the wake message and scales the session up (sessions made by
    # the API poll every 10 s); no worker consumes it here, so drop it by hand.
    wait_for(lambda: alice.call("GET", f"/session/{sid}/status").json()["phase"] == "Running", 45)
    rds.delete(status["queue_name"])
    again = alice.call("POST", f"/session/{sid}/wake").json()
    assert again == {"id": sid, "phase": "Running", "queued": False}
    assert rds.llen(status["queue_name"]) == 0


def test_sleep_refuses_with_pending_messages_and_never_deletes_them(
    alice: Http, api_client: client.ApiClient, api_namespace: str, rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    sid = status["id"]
    alice.call("POST", f"/session/{sid}/chat?wait=0", {"message": "one"})
    alice.call("POST", f"/session/{sid}/chat?wait=0", {"message": "two"})
    wait_for(lambda: _replicas(api_client, api_namespace, sid) == 1, 45)  # KEDA woke it
    refused = alice.call("POST", f"/session/{sid}/sleep")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "messages_pending"
    assert refused.json()["error"]["pending"] == 2
    assert refused.json()["error"]["in_flight"] == 0
    assert rds.llen(status["queue_name"]) == 2
    assert _replicas(api_client, api_namespace, sid) == 1


def test_sleep_refuses_while_a_message_is_in_flight_and_status_shows_it(
    alice: Http, api_client: client.ApiClient, api_namespace: str, rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    sid, queue = status["id"], status["queue_name"]
    # A worker has taken it (the queue is empty) and not finished it.
    rds.lpush(f"{queue}:processing", '{"type": "wake"}')
    wait_for(lambda: _replicas(api_client, api_namespace, sid) == 1, 45)  # KEDA woke it
    refused = alice.call("POST", f"/session/{sid}/sleep")
    assert refused.status_code == 409, refused.text
    assert (refused.json()["error"]["pending"], refused.json()["error"]["in_flight"]) == (0, 1)
    assert "in flight" in refused.json()["error"]["message"]
    assert rds.llen(f"{queue}:processing") == 1
    assert _replicas(api_client, api_namespace, sid) == 1
    shown = wait_for(
        lambda: (
            (s := alice.call("GET", f"/session/{sid}/status").json())["processing_depth"] == 1 and s
        ),
        30,
    )
    assert shown["queue_depth"] == 0


def test_sleep_with_an_empty_queue_scales_to_zero_through_the_scale_subresource(
    alice: Http, api_client: client.ApiClient, api_namespace: str, rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    sid = status["id"]
    alice.call("POST", f"/session/{sid}/wake")
    wait_for(lambda: alice.call("GET", f"/session/{sid}/status").json()["phase"] == "Running", 45)
    # As if its worker had handled the wake message: now idle, but KEDA would
    # wait out the idle timeout (120 s by default) before scaling it down.
    rds.delete(status["queue_name"])

    slept = alice.call("POST", f"/session/{sid}/sleep")
    assert slept.status_code == 200, slept.text
    assert slept.json() == {"id": sid, "phase": "Sleeping", "replicas": 0, "previous_replicas": 1}
    assert _replicas(api_client, api_namespace, sid) == 0
    wait_for(lambda: alice.call("GET", f"/session/{sid}/status").json()["phase"] == "Sleeping", 30)
    obj = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, api_namespace, PLURAL, sid
    )
    assert obj["metadata"]["generation"] == 1, "sleep must not touch the UserSession's spec"
    # Asleep already: a second call is a no-op success.
    assert alice.call("POST", f"/session/{sid}/sleep").json()["previous_replicas"] == 0


def test_delete_cleans_up_and_then_404(
    alice: Http, api_client: client.ApiClient, api_namespace: str, rds: redis.Redis
) -> None:
    status = create_sleeping(alice)
    sid, queue = status["id"], status["queue_name"]
    alice.call("POST", f"/session/{sid}/chat?wait=0", {"message": "bye"})
    assert rds.exists(queue)
    deleted = alice.call("DELETE", f"/session/{sid}")
    assert deleted.status_code == 202, deleted.text
    assert deleted.json() == {"id": sid, "status": "deleting"}
    wait_for(lambda: alice.call("GET", f"/session/{sid}/status").status_code == 404, timeout=30)
    assert rds.exists(queue) == 0
    assert not rds.keys(f"{queue}:*")
    assert alice.call("DELETE", f"/session/{sid}").status_code == 404
    apps = client.AppsV1Api(api_client)
    wait_for(
        lambda: (
            not apps.list_namespaced_deployment(
                api_namespace, field_selector=f"metadata.name={sid}"
            ).items
        ),
        timeout=60,
    )


def test_sessions_list_filters_by_user_and_paginates(alice: Http, admin: Http) -> None:
    mine = {create_sleeping(alice)["id"] for _ in range(3)}
    theirs = admin.call("POST", "/session/create", {"user_id": "carol@example.com"}).json()["id"]

    seen: list[str] = []
    token = None
    while True:
        query = "/sessions?limit=2" + (f"&continue={token}" if token else "")
        page = alice.call("GET", query).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        token = page["continue"]
        if token is None:
            break
    assert mine <= set(seen)
    assert theirs not in seen, "a user token listed another user's session"
    assert len(seen) == len(set(seen))

    carol = admin.call("GET", "/sessions?user=carol@example.com").json()["items"]
    assert [item["id"] for item in carol] == [theirs]
    assert carol[0]["user_id"] == "carol@example.com"
    assert set(carol[0]) == {
        "id",
        "user_id",
        "phase",
        "queue_depth",
        "processing_depth",
        "created_at",
    }


def test_bad_input_gets_clear_json_errors(alice: Http) -> None:
    sid = create_sleeping(alice)["id"]
    cases = [
        ("GET", "/session/not-a-uuid/status", None, 400, "invalid_session_id"),
        ("POST", "/session/create", "not json", 400, "invalid_json"),
        ("POST", "/session/create", [1, 2], 400, "invalid_json"),
        ("POST", "/session/create", {"user_id": "bad id!"}, 422, "validation_failed"),
        ("POST", "/session/create", {"colour": "red"}, 422, "validation_failed"),
        ("POST", "/session/create", {"env": {"REDIS_PASSWORD": "x"}}, 422, "validation_failed"),
        ("POST", f"/session/{sid}/chat", {}, 422, "validation_failed"),
        ("POST", f"/session/{sid}/chat", {"message": "x" * 40000}, 422, "validation_failed"),
        ("POST", f"/session/{sid}/chat?wait=soon", {"message": "x"}, 400, "invalid_query"),
        ("GET", "/sessions?limit=0", None, 400, "invalid_query"),
        ("GET", "/sessions?continue=garbage", None, 400, "invalid_query"),
        ("GET", "/sessions?limt=5", None, 400, "invalid_query"),
        ("GET", f"/session/{sid}/reply/nope", None, 400, "invalid_message_id"),
        ("PUT", f"/session/{sid}/status", None, 405, "method_not_allowed"),
        ("GET", "/nowhere", None, 404, "not_found"),
    ]
    for method, path, body, status, code in cases:
        if isinstance(body, str):
            response = alice.call(method, path, data=body)
        else:
            response = alice.call(method, path, body)
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        error = response.json()["error"]
        assert error["code"] == code, (method, path, error)
        assert error["message"]
    huge = alice.call("POST", "/session/create", data=b"{" + b" " * 300_000 + b"}")
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "body_too_large"


def _replicas(api_client: client.ApiClient, namespace: str, name: str) -> int:
    scale = client.AppsV1Api(api_client).read_namespaced_deployment_scale(name, namespace)
    return int(scale.spec.replicas or 0)


def _usersession_reads(cluster: LocalCluster) -> int:
    """GETs and LISTs of UserSessions the API server has answered, from its own metrics."""
    total = 0
    for line in cluster.api("GET", "/metrics").splitlines():
        if (
            line.startswith("apiserver_request_total{")
            and 'resource="usersessions"' in line
            and ('verb="GET"' in line or 'verb="LIST"' in line)
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_status_and_list_reads_come_from_the_cache(
    alice: Http, cluster: LocalCluster, api_client: client.ApiClient, api_namespace: str
) -> None:
    sid = create_sleeping(alice)["id"]
    # The counter really counts: one direct read shows up in it.
    before = _usersession_reads(cluster)
    client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, api_namespace, PLURAL, sid
    )
    wait_for(lambda: _usersession_reads(cluster) > before, timeout=10)
    before = _usersession_reads(cluster)
    for _ in range(50):
        assert alice.call("GET", f"/session/{sid}/status").status_code == 200
        assert alice.call("GET", "/sessions").status_code == 200
    # 100 reads served; the API server saw (next to) none of them.
    assert _usersession_reads(cluster) - before < 5
