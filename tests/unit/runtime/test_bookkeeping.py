"""kopf's bookkeeping in memory: nothing of it lands in an object's patch."""

from __future__ import annotations

import kopf

from usersession_operator.runtime.bookkeeping import Bookkeeping

PREFIX = "sessions.ai-infra.dev"


def _body(uid: str = "u-1", annotations: dict[str, str] | None = None) -> kopf.Body:
    return kopf.Body(
        {
            "metadata": {
                "name": "alice",
                "namespace": "a",
                "uid": uid,
                **({"annotations": annotations} if annotations else {}),
            },
            "spec": {"userId": "alice@example.com"},
        }
    )


def test_progress_and_configuration_are_kept_per_uid_and_never_patched() -> None:
    books = Bookkeeping(PREFIX)
    body, other, patch = _body(), _body("u-2"), kopf.Patch()
    record: kopf.ProgressRecord = {"started": "2026-01-01T00:00:00", "retries": 1}
    books.progress.store(key=kopf.HandlerId("created"), record=record, body=body, patch=patch)
    essence = books.diffbase.build(body=body)
    books.diffbase.store(body=body, patch=patch, essence=essence)
    assert patch == {}
    assert books.progress.fetch(key=kopf.HandlerId("created"), body=body) == record
    assert books.progress.fetch(key=kopf.HandlerId("created"), body=other) is None
    assert books.diffbase.fetch(body=body) == essence
    assert books.diffbase.fetch(body=other) is None

    books.progress.purge(key=kopf.HandlerId("created"), body=body, patch=patch)
    assert books.progress.fetch(key=kopf.HandlerId("created"), body=body) is None
    books.forget("u-1")
    assert books.diffbase.fetch(body=body) is None
    assert patch == {}


def test_an_annotation_left_by_an_older_release_is_not_a_change() -> None:
    books = Bookkeeping(PREFIX)
    old = _body(annotations={f"{PREFIX}/last-handled-configuration": '{"spec": {}}'})
    assert books.diffbase.build(body=old) == books.diffbase.build(body=_body())


def test_a_retry_still_wakes_kopf_with_a_touch() -> None:
    # kopf sleeps through a handler's retry delay, then touches the object so that
    # a watch event brings it back: that one write must remain.
    patch = kopf.Patch()
    Bookkeeping(PREFIX).progress.touch(body=_body(), patch=patch, value="2026-01-01T00:00:00")
    assert patch["metadata"]["annotations"][f"{PREFIX}/touch-dummy"] == "2026-01-01T00:00:00"
