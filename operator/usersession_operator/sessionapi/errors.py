"""The one error shape of the API: {"error": {"code", "message", ...}} with a fitting status.

Handlers raise ApiError; the middleware in app.py turns it, aiohttp's own HTTP
errors and anything unexpected into that shape. Unexpected exceptions are
logged here and answered with a fixed message, so no stack trace or internal
detail ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        error.update(self.details)
        return {"error": error}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def invalid(errors: list[dict[str, str]]) -> ApiError:
    """422: the body was JSON, but fields are missing or wrong (each named in `fields`)."""
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ApiError(422, "validation_failed", summary, {"fields": errors})


def unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "a valid bearer token is required")


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def session_not_found(session_id: str) -> ApiError:
    # Also the answer for someone else's session: its existence is not revealed.
    return ApiError(404, "session_not_found", f"no session {session_id}")


def conflict(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(409, code, message, details)


def kubernetes_unavailable(reason: str) -> ApiError:
    return ApiError(503, "kubernetes_unavailable", f"the Kubernetes API is unavailable: {reason}")


def redis_unavailable(reason: str) -> ApiError:
    return ApiError(503, "redis_unavailable", f"Redis is unavailable: {reason}")


# aiohttp raises these for requests that never reach a handler.
_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def from_http_exception(exc: web.HTTPException) -> ApiError:
    code = _HTTP_CODES.get(exc.status, "http_error")
    message = exc.reason
    if exc.status == 413:
        message = "the request body is too large"
    # A 405 must list what is allowed (RFC 9110); aiohttp put that in Allow.
    kept = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return ApiError(exc.status, code, message, headers=kept)


def internal(exc: BaseException) -> ApiError:
    log.exception("unexpected error", exc_info=exc)
    return ApiError(500, "internal_error", "internal error; the API's log has the details")


def response(error: ApiError) -> web.Response:
    headers = dict(error.headers)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return web.json_response(error.body(), status=error.status, headers=headers)
