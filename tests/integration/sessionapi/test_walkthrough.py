"""The seed's curl walkthrough (create, wake, status, sessions, metrics, chat), end to end."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from usersession_localstack.loopback import wait_for

from .harness import Http, Worker

pytestmark = pytest.mark.usefixtures("operator")


def test_walkthrough(alice: Http, start_worker: Callable[[str], Worker]) -> None:
    created = alice.call("POST", "/session/create", {"user_id": "alice@example.com"})
    assert created.status_code == 201, created.text
    session = created.json()
    sid = session["id"]
    assert session["status_url"] == f"/session/{sid}/status"
    assert created.headers["Location"] == session["status_url"]

    status = wait_for(
        lambda: (
            (s := alice.call("GET", session["status_url"]).json()).get("phase") == "Sleeping" and s
        ),
        timeout=30,
    )
    assert status["user_id"] == "alice@example.com"
    assert status["replicas"] == 0
    assert {c["type"] for c in status["conditions"]} >= {"Ready"}

    woken = alice.call("POST", f"/session/{sid}/wake")
    assert woken.status_code == 200, woken.text
    assert woken.json()["queued"] is True
    wait_for(lambda: alice.call("GET", session["status_url"]).json()["queue_depth"] == 1, 20)

    listed = alice.call("GET", "/sessions").json()
    assert sid in [item["id"] for item in listed["items"]]

    worker = start_worker(status["queue_name"])
    chat = alice.call("POST", f"/session/{sid}/chat", {"message": "Hello!"})
    assert chat.status_code == 200, chat.text
    assert chat.json()["reply"] == "echo: Hello!"

    metrics = alice.call("GET", "/metrics")
    assert metrics.status_code == 200
    assert 'sessionapi_chats_total{outcome="replied"} 1.0' in metrics.text
    assert 'route="/session/{id}/chat"' in metrics.text
    code, output = worker.stop()
    assert code == 0, output
