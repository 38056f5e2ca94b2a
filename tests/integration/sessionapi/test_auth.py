"""Who may do what: no token, a wrong token, another user's token, an admin token."""

from __future__ import annotations

import pytest

from .harness import ADMIN_TOKEN, BOB_TOKEN, Http, create_sleeping

pytestmark = pytest.mark.usefixtures("operator")


def test_auth_matrix(alice: Http) -> None:
    sid = create_sleeping(alice)["id"]
    anonymous, wrong = alice.as_(None), alice.as_("not-a-token-0123456789abcdef")
    bob, admin = alice.as_(BOB_TOKEN), alice.as_(ADMIN_TOKEN)
    endpoints = [
        ("GET", f"/session/{sid}/status", None),
        ("POST", f"/session/{sid}/wake", None),
        ("POST", f"/session/{sid}/chat?wait=0", {"message": "hi"}),
        ("GET", f"/session/{sid}/reply/00000000-0000-4000-8000-000000000000", None),
        ("POST", f"/session/{sid}/sleep", None),
        ("DELETE", f"/session/{sid}", None),
    ]
    for method, path, body in endpoints:
        for caller in (anonymous, wrong):
            response = caller.call(method, path, body)
            assert response.status_code == 401, (method, path, caller.token)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"
        # Someone else's session looks exactly like a missing one.
        response = bob.call(method, path, body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {
            "error": {"code": "session_not_found", "message": f"no session {sid}"}
        }

    for caller in (anonymous, wrong):
        assert caller.call("GET", "/sessions").status_code == 401
        assert caller.call("POST", "/session/create", {}).status_code == 401
        assert caller.call("GET", "/metrics").status_code == 401
    assert sid not in [s["id"] for s in bob.call("GET", "/sessions").json()["items"]]
    assert bob.call("GET", "/sessions?user=alice@example.com").json()["items"] == []

    # A user token creates only for its own user, and picks no image of its own.
    refused = bob.call("POST", "/session/create", {"user_id": "alice@example.com"})
    assert refused.status_code == 403
    assert bob.call("POST", "/session/create", {"image": "evil/miner"}).status_code == 403

    # The admin token sees and acts on everyone's sessions.
    assert admin.call("GET", f"/session/{sid}/status").json()["user_id"] == "alice@example.com"
    assert sid in [s["id"] for s in admin.call("GET", "/sessions").json()["items"]]
    assert admin.call("POST", "/session/create", {}).status_code == 422  # admins name the user
    assert admin.call("DELETE", f"/session/{sid}").status_code == 202

    # Public endpoints need no token.
    assert anonymous.call("GET", "/openapi.json").status_code == 200
    assert anonymous.call("GET", "/health").status_code == 200
    assert anonymous.call("GET", "/livez").json() == {"status": "ok"}
    assert anonymous.call("GET", "/readyz").json() == {"status": "ok"}
