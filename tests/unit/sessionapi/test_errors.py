from __future__ import annotations

import json
import logging

import pytest
from aiohttp import web

from usersession_operator.sessionapi import errors


def _body(response: web.Response) -> dict[str, object]:
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes)
    loaded: dict[str, object] = json.loads(response.body)
    return loaded


def test_every_error_has_the_same_shape() -> None:
    for error, status in [
        (errors.bad_request("invalid_json", "nope"), 400),
        (errors.unauthorized(), 401),
        (errors.forbidden("no"), 403),
        (errors.session_not_found("abc"), 404),
        (errors.conflict("messages_pending", "2 waiting", pending=2), 409),
        (errors.invalid([{"field": "message", "message": "is required"}]), 422),
        (errors.kubernetes_unavailable("refused"), 503),
        (errors.redis_unavailable("refused"), 503),
    ]:
        response = errors.response(error)
        assert response.status == status
        body = _body(response)
        assert set(body) == {"error"}
        inner = body["error"]
        assert isinstance(inner, dict)
        assert isinstance(inner["code"], str)
        assert isinstance(inner["message"], str)
        assert inner["message"]


def test_validation_errors_name_each_field() -> None:
    error = errors.invalid(
        [{"field": "user_id", "message": "bad"}, {"field": "image", "message": "too long"}]
    )
    assert error.message == "user_id: bad; image: too long"
    assert error.body()["error"]["fields"][1] == {"field": "image", "message": "too long"}


def test_conflict_details_sit_next_to_code_and_message() -> None:
    body = errors.conflict("messages_pending", "2 waiting", pending=2).body()
    assert body == {"error": {"code": "messages_pending", "message": "2 waiting", "pending": 2}}


def test_401_tells_the_client_the_scheme() -> None:
    assert errors.response(errors.unauthorized()).headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (web.HTTPNotFound(), 404, "not_found"),
        (web.HTTPMethodNotAllowed("PUT", ["GET"]), 405, "method_not_allowed"),
        (web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20), 413, "body_too_large"),
    ],
)
def test_aiohttp_errors_are_translated(exc: web.HTTPException, status: int, code: str) -> None:
    error = errors.from_http_exception(exc)
    assert (error.status, error.code) == (status, code)
    if status == 405:
        assert errors.response(error).headers["Allow"] == "GET"


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_unexpected_exceptions_are_logged_but_not_revealed() -> None:
    collect = _Collect()
    errors.log.addHandler(collect)
    try:
        try:
            raise RuntimeError("secret internals at /srv/app.py line 7")
        except RuntimeError as exc:
            response = errors.response(errors.internal(exc))
    finally:
        errors.log.removeHandler(collect)
    assert response.status == 500
    text = json.dumps(_body(response))
    assert "secret internals" not in text
    assert "Traceback" not in text
    [record] = collect.records
    assert record.exc_info is not None
    assert "secret internals" in str(record.exc_info[1])
