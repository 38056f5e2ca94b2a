from __future__ import annotations

import pytest

from usersession_operator.sessionapi import validation
from usersession_operator.sessionapi.errors import ApiError

SID = "5f0c8a2e-1d2b-4c3d-9e4f-0a1b2c3d4e5f"


def _fails(fn: object, *args: object) -> ApiError:
    assert callable(fn)
    with pytest.raises(ApiError) as caught:
        fn(*args)
    return caught.value


def test_session_ids_are_canonical_uuids() -> None:
    assert validation.session_id(SID) == SID
    assert validation.session_id(SID.upper()) == SID
    for bad in ["", "abc", SID.replace("-", ""), "{" + SID + "}", SID + "0", "../" + SID]:
        error = _fails(validation.session_id, bad)
        assert (error.status, error.code) == (400, "invalid_session_id")
    assert _fails(validation.message_id, "x").code == "invalid_message_id"


@pytest.mark.parametrize("raw", [b"", b"  ", b"nope", b"[1]", b'"text"', b"\xff", b"null"])
def test_bodies_must_be_json_objects(raw: bytes) -> None:
    error = _fails(validation.json_object, raw)
    assert (error.status, error.code) == (400, "invalid_json")


def test_a_valid_create_request() -> None:
    wanted = validation.create_request(
        {
            "user_id": "alice.o'neil@example.com".replace("'", ""),
            "image": "r/i:1",
            "env": {"A": "1"},
        }
    )
    assert wanted == validation.CreateRequest("alice.oneil@example.com", "r/i:1", {"A": "1"})
    assert validation.create_request({}) == validation.CreateRequest(None)
    with_disk = validation.create_request(
        {"storage": {"size": "10Gi"}, "expire_after_idle_seconds": 3600}
    )
    assert with_disk.storage == {"size": "10Gi", "mountPath": "/data"}
    assert with_disk.expire_after_idle_seconds == 3600
    as_float = validation.create_request({"expire_after_idle_seconds": 3600.0})
    assert as_float.expire_after_idle_seconds == 3600
    half = validation.create_request({"storage": {"size": "0.5Gi", "mount_path": "/w"}})
    assert half.storage == {"size": "0.5Gi", "mountPath": "/w"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": None}, "user_id"),
        ({"image": None}, "image"),
        ({"env": None}, "env"),
        ({"user_id": 7}, "user_id"),
        ({"user_id": "has space"}, "user_id"),
        ({"user_id": "trailing\n"}, "user_id"),
        ({"user_id": "-leading"}, "user_id"),
        ({"user_id": "a" * 255}, "user_id"),
        ({"image": ""}, "image"),
        ({"image": "a b"}, "image"),
        ({"image": "p\u0085"}, "image"),
        ({"image": "x" * 513}, "image"),
        ({"env": ["A=1"]}, "env"),
        ({"env": {"1A": "x"}}, "env.1A"),
        ({"env": {"A": 1}}, "env.A"),
        ({"env": {"A": "x" * 4097}}, "env.A"),
        ({"env": {"USER_ID": "root"}}, "env.USER_ID"),
        ({"env": {f"V{i}": "" for i in range(65)}}, "env"),
        ({"colour": "red"}, "colour"),
        ({"storage": "10Gi"}, "storage"),
        ({"storage": {}}, "storage.size"),
        ({"storage": {"size": "0Gi"}}, "storage.size"),
        ({"storage": {"size": "ten gigs"}}, "storage.size"),
        ({"storage": {"size": "1Gi", "mount_path": "data"}}, "storage.mount_path"),
        ({"storage": {"size": "1Gi", "class": "fast"}}, "storage.class"),
        ({"expire_after_idle_seconds": 5}, "expire_after_idle_seconds"),
        ({"expire_after_idle_seconds": True}, "expire_after_idle_seconds"),
        ({"expire_after_idle_seconds": "3600"}, "expire_after_idle_seconds"),
        ({"expire_after_idle_seconds": 3600.5}, "expire_after_idle_seconds"),
    ],
)
def test_invalid_create_requests_name_the_field(body: dict[str, object], field: str) -> None:
    error = _fails(validation.create_request, body)
    assert (error.status, error.code) == (422, "validation_failed")
    assert field in [f["field"] for f in error.details["fields"]]


def test_chat_text_is_required_non_blank_and_bounded() -> None:
    assert validation.chat_text({"message": "Hello!"}) == "Hello!"
    assert validation.chat_text({"message": "x" * validation.MAX_MESSAGE_CHARS})
    for body in [{}, {"message": ""}, {"message": "  "}, {"message": 5}, {"message": "x", "y": 1}]:
        assert _fails(validation.chat_text, body).status == 422
    too_long = {"message": "x" * (validation.MAX_MESSAGE_CHARS + 1)}
    assert "at most" in _fails(validation.chat_text, too_long).message


def test_wait_defaults_and_bounds() -> None:
    assert validation.wait_seconds({}, 10, 60) == 10
    assert validation.wait_seconds({}, 90, 60) == 60
    assert validation.wait_seconds({"wait": "0"}, 10, 60) == 0
    assert validation.wait_seconds({"wait": "2.5"}, 10, 60) == 2.5
    for bad in ["-1", "61", "nan", "soon", "inf"]:
        assert _fails(validation.wait_seconds, {"wait": bad}, 10, 60).status == 400


def test_list_query() -> None:
    assert validation.limit({}) == validation.DEFAULT_LIMIT
    assert validation.limit({"limit": "500"}) == 500
    for bad in ["0", "501", "-1", "1.5", "ten", "\u0661"]:
        assert _fails(validation.limit, {"limit": bad}).code == "invalid_query"
    assert validation.user_filter({}) is None
    assert validation.user_filter({"user": "bob@example.com"}) == "bob@example.com"
    assert _fails(validation.user_filter, {"user": "bob smith"}).status == 400
