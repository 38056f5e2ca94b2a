"""Readers of one field of a UserSession body, each naming the field's path in its error.

The schema refuses most bad values at the API server; these repeat the checks
for bodies that never went through it (tests, tools, servers without CEL), so
that an InvalidSession always says which field to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usersession_operator.session.model import InvalidSession, plain


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSession(f"{path} must be an object")
    return value


def text(source: Mapping[str, Any], key: str, path: str) -> str:
    value = optional_text(source, key, path)
    if not value:
        raise InvalidSession(f"{path} is required")
    return value


def optional_text(source: Mapping[str, Any], key: str, path: str) -> str | None:
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSession(f"{path} must be a string")
    return value


def integer(
    source: Mapping[str, Any],
    key: str,
    default: int,
    path: str,
    minimum: int,
    maximum: int | None = None,
) -> int:
    value = source.get(key, default)
    # bool is an int subclass; true is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSession(f"{path} must be an integer")
    if value < minimum:
        raise InvalidSession(f"{path} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidSession(f"{path} must be at most {maximum}")
    return value


def boolean(source: Mapping[str, Any], key: str, path: str) -> bool:
    value = source.get(key, False)
    if not isinstance(value, bool):
        raise InvalidSession(f"{path} must be true or false")
    return value


def listing(source: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = source.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidSession(f"{path} must be a list")
    return list(value)


def dictionary(source: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    return plain_dict(mapping(source.get(key), path), path)


def plain_dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSession(f"{path} must be an object")
    result: dict[str, Any] = plain(value)
    return result
