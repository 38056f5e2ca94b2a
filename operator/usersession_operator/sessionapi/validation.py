"""Request validation: path ids, JSON bodies and query parameters.

Status codes are consistent: 400 when the request cannot be read at all (a bad
UUID in the path, a body that is not a JSON object, a malformed query
parameter), 422 when it was read but fields are missing, of the wrong type or
too large, with every offending field named.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from usersession_operator.session.model import RESERVED_ENV_NAMES
from usersession_operator.sessionapi.contract import (
    DEFAULT_LIMIT,
    ENV_NAME,
    IMAGE,
    MAX_ENV,
    MAX_ENV_VALUE,
    MAX_EXPIRY,
    MAX_IMAGE,
    MAX_LIMIT,
    MAX_MESSAGE_CHARS,
    MAX_MOUNT_PATH,
    MAX_SIZE,
    MAX_USER_ID,
    MIN_EXPIRY,
    SIZE,
    USER_ID,
)
from usersession_operator.sessionapi.errors import bad_request, invalid

# Not in the document: a transport limit, checked before the body is parsed.
MAX_BODY_BYTES = 256 * 1024


def session_id(text: str) -> str:
    return _uuid(text, "invalid_session_id", "session id")


def message_id(text: str) -> str:
    return _uuid(text, "invalid_message_id", "message id")


def _uuid(text: str, code: str, what: str) -> str:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        raise bad_request(code, f"{what} must be a UUID, got {text[:64]!r}") from None
    # Only the canonical spelling: other spellings would name other (invalid) objects.
    if str(parsed) != text.lower():
        raise bad_request(code, f"{what} must be a UUID in canonical form, got {text[:64]!r}")
    return str(parsed)


def json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("invalid_json", "the request body must be a JSON object")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "the request body must be a JSON object")
    return data


@dataclass(frozen=True)
class CreateRequest:
    user_id: str | None
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # spec.storage as the API server takes it ({size, mountPath}), or None.
    storage: dict[str, str] | None = None
    expire_after_idle_seconds: int | None = None


CREATE_FIELDS = ("user_id", "image", "env", "storage", "expire_after_idle_seconds")


def create_request(body: Mapping[str, Any]) -> CreateRequest:
    errors: list[dict[str, str]] = []
    for name in sorted(set(body) - set(CREATE_FIELDS)):
        errors.append(_err(name, f"unknown field (allowed: {', '.join(CREATE_FIELDS)})"))

    # A field that is present must be valid; null is not a way to leave it out.
    user = body.get("user_id")
    if "user_id" in body and (problem := user_id_problem(user)):
        errors.append(_err("user_id", problem))

    image = body.get("image")
    if "image" in body and not (isinstance(image, str) and 0 < len(image) <= MAX_IMAGE):
        errors.append(_err("image", f"must be a non-empty string of at most {MAX_IMAGE}"))
    elif isinstance(image, str) and not IMAGE.fullmatch(image):
        errors.append(_err("image", "must be printable ASCII without spaces"))

    env = body.get("env", {})
    if not isinstance(env, dict):
        errors.append(_err("env", "must be an object of NAME: value strings"))
        env = {}
    elif len(env) > MAX_ENV:
        errors.append(_err("env", f"at most {MAX_ENV} variables"))
    for name, value in env.items():
        where = f"env.{name}"
        if not ENV_NAME.fullmatch(name):
            errors.append(_err(where, "names are letters, digits and _, not starting with a digit"))
        elif name in RESERVED_ENV_NAMES:
            errors.append(_err(where, "is set by the operator and cannot be overridden"))
        if not isinstance(value, str) or len(value) > MAX_ENV_VALUE:
            errors.append(_err(where, f"values are strings of at most {MAX_ENV_VALUE}"))
    storage = _storage(body.get("storage"), errors) if "storage" in body else None
    expiry = body.get("expire_after_idle_seconds")
    if isinstance(expiry, float) and expiry.is_integer():
        expiry = int(expiry)  # JSON has one number type: 3600.0 is the integer 3600
    if "expire_after_idle_seconds" in body and not (
        isinstance(expiry, int)
        and not isinstance(expiry, bool)
        and MIN_EXPIRY <= expiry <= MAX_EXPIRY
    ):
        errors.append(
            _err(
                "expire_after_idle_seconds",
                f"must be a whole number of seconds from {MIN_EXPIRY} to {MAX_EXPIRY}",
            )
        )
    if errors:
        raise invalid(errors)
    return CreateRequest(
        user_id=user if isinstance(user, str) else None,
        image=image if isinstance(image, str) else None,
        env=dict(env),
        storage=storage,
        expire_after_idle_seconds=expiry if isinstance(expiry, int) else None,
    )


def _storage(value: Any, errors: list[dict[str, str]]) -> dict[str, str] | None:
    """{size, mount_path} from the request; class and deletion policy are the platform's."""
    if not isinstance(value, dict):
        errors.append(_err("storage", "must be an object with size (and mount_path)"))
        return None
    for name in sorted(set(value) - {"size", "mount_path"}):
        errors.append(_err(f"storage.{name}", "unknown field (allowed: size, mount_path)"))
    size, path = value.get("size"), value.get("mount_path", "/data")
    if not (isinstance(size, str) and len(size) <= MAX_SIZE and SIZE.fullmatch(size)):
        errors.append(_err("storage.size", "must be a size above zero, such as 10Gi or 512Mi"))
    if not (isinstance(path, str) and path.startswith("/") and len(path) <= MAX_MOUNT_PATH):
        errors.append(_err("storage.mount_path", "must be an absolute path"))
    if not (isinstance(size, str) and isinstance(path, str)):
        return None
    return {"size": size, "mountPath": path}


def user_id_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > MAX_USER_ID:
        return f"at most {MAX_USER_ID} characters"
    if not USER_ID.fullmatch(value):
        return "letters, digits and . _ @ + -, starting with a letter or digit"
    return None


def chat_text(body: Mapping[str, Any]) -> str:
    errors = [
        _err(name, "unknown field (allowed: message)") for name in sorted(set(body) - {"message"})
    ]
    text = body.get("message")
    if text is None:
        errors.append(_err("message", "is required"))
    elif not isinstance(text, str) or not text.strip():
        errors.append(_err("message", "must be a non-empty string"))
    elif len(text) > MAX_MESSAGE_CHARS:
        errors.append(_err("message", f"at most {MAX_MESSAGE_CHARS} characters"))
    if errors:
        raise invalid(errors)
    assert isinstance(text, str)
    return text


def wait_seconds(query: Mapping[str, str], default: float, maximum: float) -> float:
    raw = query.get("wait")
    if raw is None:
        return min(default, maximum)
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(
            "invalid_query", f"wait must be a number of seconds, got {raw[:32]!r}"
        ) from None
    if not 0 <= value <= maximum:  # also refuses nan
        raise bad_request("invalid_query", f"wait must be between 0 and {maximum:g} seconds")
    return value


def limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request("invalid_query", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def user_filter(query: Mapping[str, str]) -> str | None:
    raw = query.get("user")
    if raw is None:
        return None
    if problem := user_id_problem(raw):
        raise bad_request("invalid_query", f"user {problem}")
    return raw


def _err(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}
