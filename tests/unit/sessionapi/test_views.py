"""views.py: what the API shows of a UserSession, and cursor pagination."""

from __future__ import annotations

from typing import Any

import pytest

from usersession_operator.sessionapi import views
from usersession_operator.sessionapi.errors import ApiError


def _obj(name: str, created: str, user: str = "alice", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": created, "generation": 1},
        "spec": {"userId": user, "workload": {"image": "i"}},
        "status": status,
    }


def test_a_session_without_status_yet_is_pending() -> None:
    view = views.view(_obj("a", "2026-01-01T00:00:00Z"))
    assert view["phase"] == "Pending"
    assert view["pod"] is None
    assert view["conditions"] == []
    assert view["queue_depth"] is None


def test_a_session_being_deleted_is_terminating_whatever_its_status_says() -> None:
    obj = _obj("a", "t", phase="Running")
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert views.phase(obj) == "Terminating"


def test_the_view_mirrors_the_operators_status() -> None:
    obj = _obj(
        "a",
        "t",
        phase="Running",
        queueDepth=2,
        processingDepth=1,
        queueName="q",
        replicas=1,
        readyReplicas=1,
        pod={"name": "a-1", "phase": "Running", "ready": True},
        conditions=[{"type": "Ready", "status": "True", "reason": "Running", "message": "m"}],
        lastActivityTime="2026-01-01T00:00:00Z",
        observedGeneration=1,
    )
    view = views.view(obj)
    assert view["phase"] == "Running"
    assert view["queue_depth"] == 2
    assert view["processing_depth"] == 1
    assert view["pod"] == {"name": "a-1", "phase": "Running", "ready": True}
    assert view["conditions"][0]["reason"] == "Running"
    assert view["last_activity_time"] == "2026-01-01T00:00:00Z"
    assert view["replicas"] == view["ready_replicas"] == 1


def test_pages_walk_every_session_once_in_creation_order() -> None:
    objects = [_obj(f"s{i}", f"2026-01-01T00:00:{i % 3:02d}Z") for i in range(7)]
    seen: list[str] = []
    token = None
    while True:
        items, token = views.page(objects, 3, token)
        seen += [i["metadata"]["name"] for i in items]
        if token is None:
            break
    assert sorted(seen) == sorted(o["metadata"]["name"] for o in objects)
    assert len(seen) == len(set(seen))
    created = [next(o for o in objects if o["metadata"]["name"] == n) for n in seen]
    assert created == sorted(created, key=lambda o: o["metadata"]["creationTimestamp"])


def test_a_deleted_session_between_pages_skips_nothing() -> None:
    objects = [_obj(f"s{i}", f"2026-01-01T00:00:0{i}Z") for i in range(4)]
    first, token = views.page(objects, 2, None)
    remaining = [o for o in objects if o is not first[0]]  # the first one is deleted
    second, token = views.page(remaining, 2, token)
    assert [o["metadata"]["name"] for o in second] == ["s2", "s3"]
    assert token is None


@pytest.mark.parametrize("token", ["garbage", "W10", "eyJhIjogMX0", "%%%"])
def test_foreign_tokens_are_400(token: str) -> None:
    with pytest.raises(ApiError) as caught:
        views.page([], 10, token)
    assert caught.value.status == 400
