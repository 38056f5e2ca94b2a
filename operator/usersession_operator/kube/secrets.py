"""The one reader of Secret and ConfigMap values, for the operator and the session API.

Only what a session references is read (its Redis password, ACL username, TLS
material), one key at a time, and only handed to whoever connects to Redis: a
value read here is never logged, written or kept but by its caller.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from kubernetes import client

from usersession_operator.kube.client import ApiClient, ApiException, describe, unreachable


class Secrets:
    """Async reads (each in a worker thread); every failure is a LookupError naming the
    object and what went wrong, never the value."""

    def __init__(self, api_client: ApiClient, timeout: tuple[float, float] | None = None) -> None:
        self._core = client.CoreV1Api(api_client)
        self._timeout: dict[str, Any] = {"_request_timeout": timeout} if timeout else {}

    async def secret(self, namespace: str, name: str, key: str) -> str:
        return await asyncio.to_thread(self._read, "Secret", namespace, name, key)

    async def config_map(self, namespace: str, name: str, key: str) -> str:
        return await asyncio.to_thread(self._read, "ConfigMap", namespace, name, key)

    def _read(self, kind: str, namespace: str, name: str, key: str) -> str:
        read = (
            self._core.read_namespaced_secret
            if kind == "Secret"
            else self._core.read_namespaced_config_map
        )
        try:
            obj = read(name, namespace, **self._timeout)
        except ApiException as exc:
            raise LookupError(f"cannot read {kind} {namespace}/{name}: {describe(exc)}") from None
        except Exception as exc:
            if not unreachable(exc):
                raise
            raise LookupError(f"cannot read {kind} {namespace}/{name}: {describe(exc)}") from None
        value = (obj.data or {}).get(key)
        if value is None:
            raise LookupError(f"{kind} {namespace}/{name} has no key {key!r}")
        return base64.b64decode(value).decode() if kind == "Secret" else str(value)
