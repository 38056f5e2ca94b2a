"""Clients per Redis server and credentials, shared by every session on them, for the
operator and the session API alike."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from usersession_operator.queues.targets import QueueTarget
from usersession_operator.queues.tls import Credentials, fingerprint, make_client, tls_context
from usersession_operator.session.redisrefs import CONFIG_MAP, KeyRef

log = logging.getLogger(__name__)
T = TypeVar("T")

PASSWORD_TTL = (
    300.0  # seconds; a rotated Secret is picked up within this, or at once on auth failure
)
TIMEOUT = 5.0  # seconds: connect, and any command that should not block


# (namespace, name, key) -> the value; LookupError naming what is missing.
SecretReader = Callable[[str, str, str], Awaitable[str]]
ConfigMapReader = SecretReader


class RedisConnections:
    """Clients per Redis server and credentials, shared by every session on them.

    Credentials (password, ACL username, TLS material) come from the Secrets and
    ConfigMaps each session references, cached for PASSWORD_TTL; callers pass
    refresh=True after an authentication failure. Used by the operator and the
    session API alike.
    """

    def __init__(
        self, read_secret: SecretReader, read_config_map: ConfigMapReader | None = None
    ) -> None:
        self._read_secret = read_secret
        self._read_config_map = read_config_map
        self._credentials: dict[tuple[object, ...], tuple[Credentials, float]] = {}
        self._clients: dict[tuple[str, int, int, str, float | None], aioredis.Redis] = {}

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def credentials(self, target: QueueTarget, refresh: bool = False) -> Credentials:
        ref = (
            target.secret_namespace,
            target.secret_name,
            target.secret_key,
            target.username,
            target.tls,
            target.server_name,
        )
        cached = self._credentials.get(ref)
        if cached and not refresh and time.monotonic() - cached[1] < PASSWORD_TTL:
            return cached[0]
        try:
            credentials = await self._read_credentials(target)
        except LookupError:
            if cached is None or refresh:
                raise
            # Unreadable now, yet what it held still opens the server: a namespace
            # being deleted loses its Secret before its sessions' finalizers have
            # cleaned Redis. A refused password asks again (refresh) and fails.
            log.debug("credentials of %s/%s unreadable; using the last ones", *ref[:2])
            return cached[0]
        self._credentials[ref] = (credentials, time.monotonic())
        return credentials

    async def _read_credentials(self, target: QueueTarget) -> Credentials:
        namespace = target.secret_namespace
        password = await self._read_secret(namespace, target.secret_name, target.secret_key)
        username = await self._value(namespace, target.username)
        tls = target.tls
        if tls is None:
            return Credentials(username, password, None, None, fingerprint(username, password))
        ca = await self._value(namespace, tls.ca)
        cert = await self._value(namespace, tls.client_cert)
        key = await self._value(namespace, tls.client_key)
        context = tls_context(ca, cert, key, f"namespace {namespace}")
        return Credentials(
            username,
            password,
            context,
            target.server_name,
            fingerprint(username, password, "tls", ca, cert, key, target.server_name),
        )

    async def _value(self, namespace: str, ref: KeyRef | None) -> str | None:
        if ref is None:
            return None
        if ref.kind == CONFIG_MAP:
            if self._read_config_map is None:
                raise LookupError(f"cannot read ConfigMap {namespace}/{ref.name} from here")
            return await self._read_config_map(namespace, ref.name, ref.key)
        return await self._read_secret(namespace, ref.name, ref.key)

    async def client(
        self, target: QueueTarget, refresh: bool = False, socket_timeout: float | None = TIMEOUT
    ) -> tuple[aioredis.Redis, str]:
        """A client for target's server, and a fingerprint of its credentials (to group by)."""
        credentials = await self.credentials(target, refresh)
        key = (target.host, target.port, target.database, credentials.fingerprint, socket_timeout)
        client = self._clients.get(key)
        if client is None:
            client = make_client(
                target.host,
                target.port,
                target.database,
                credentials,
                socket_timeout=socket_timeout,
                socket_connect_timeout=TIMEOUT,
            )
            self._clients[key] = client
        return client, credentials.fingerprint

    async def run(
        self,
        target: QueueTarget,
        operation: Callable[[aioredis.Redis], Awaitable[T]],
        socket_timeout: float | None = TIMEOUT,
    ) -> T:
        """operation on target's server; after a refused password, once more with the
        Secret read again (a rotated password is picked up at once). Failures raise."""
        try:
            client, _ = await self.client(target, socket_timeout=socket_timeout)
            return await operation(client)
        except AuthenticationError:
            client, _ = await self.client(target, refresh=True, socket_timeout=socket_timeout)
            return await operation(client)


class Unavailable(Exception):
    """Redis could not be reached, or refused: the message says why (never a secret)."""


def describe(exc: BaseException) -> str:
    """A Redis failure for status, logs and API errors (shortened)."""
    # redis-py's messages name the host and the failure, never the password.
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        # ssl's own words do not say which setting to look at.
        text = f"TLS: Redis's certificate does not verify against the configured CA: {text}"
    return f"{type(exc).__name__}: {text}"[:300]
