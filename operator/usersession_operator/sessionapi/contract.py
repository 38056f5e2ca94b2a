"""The limits of the session API's requests, read from its OpenAPI document.

The document clients read is the one source: validation.py checks requests with
these numbers and patterns, so the two cannot disagree. ECMA and Python regex
agree on the patterns used here (character classes and anchors only).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import yaml

OPENAPI = resources.files(__package__).joinpath("openapi.yaml")
DOCUMENT: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
_SCHEMAS = DOCUMENT["components"]["schemas"]


def _pattern(schema: dict[str, Any]) -> re.Pattern[str]:
    """The schema's pattern for fullmatch: its anchors are implied there."""
    return re.compile(str(schema["pattern"]).removeprefix("^").removesuffix("$"))


def _query_parameter(path: str, name: str) -> dict[str, Any]:
    for parameter in DOCUMENT["paths"][path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise KeyError(name)


_USER = _SCHEMAS["UserId"]
MAX_USER_ID: int = _USER["maxLength"]
USER_ID = _pattern(_USER)

_CREATE = _SCHEMAS["CreateRequest"]["properties"]
MAX_IMAGE: int = _CREATE["image"]["maxLength"]
IMAGE = _pattern(_CREATE["image"])
MAX_ENV: int = _CREATE["env"]["maxProperties"]
MAX_ENV_VALUE: int = _CREATE["env"]["additionalProperties"]["maxLength"]
ENV_NAME = _pattern(_CREATE["env"]["propertyNames"])  # includes the length limit
RESERVED_ENV_NAMES_DOCUMENTED = frozenset(_CREATE["env"]["propertyNames"]["not"]["enum"])
_STORAGE = _CREATE["storage"]["properties"]
MAX_SIZE: int = _STORAGE["size"]["maxLength"]
SIZE = _pattern(_STORAGE["size"])
MAX_MOUNT_PATH: int = _STORAGE["mount_path"]["maxLength"]
MIN_EXPIRY: int = _CREATE["expire_after_idle_seconds"]["minimum"]
MAX_EXPIRY: int = _CREATE["expire_after_idle_seconds"]["maximum"]

MAX_MESSAGE_CHARS: int = _SCHEMAS["ChatRequest"]["properties"]["message"]["maxLength"]

_LIMIT = _query_parameter("/sessions", "limit")
MAX_LIMIT: int = _LIMIT["maximum"]
DEFAULT_LIMIT: int = _LIMIT["default"]
