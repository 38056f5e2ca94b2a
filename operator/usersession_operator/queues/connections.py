"""Where the operator talks to Redis: queue depths for all sessions, and key cleanup.

Key layout of one session, all derived from its queue (list) name Q:
  Q               the list producers LPUSH to and KEDA measures
  Q:processing    where a worker parks a message it took (reliable-queue pattern)
  Q:reply:<id>    replies a worker posts back for a chat message
and, per Redis database, one pub/sub channel:
  usersession:work@<db>   the session API publishes Q there after pushing to Q,
                          so the operator hears of the work even where keyspace
                          notifications are off
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError

from usersession_operator.queues.tls import Credentials, fingerprint, make_client, tls_context
from usersession_operator.session.model import Session, parse_address, processing_key
from usersession_operator.session.redisrefs import CONFIG_MAP, KeyRef, RedisTls
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import Key, QueueReading

log = logging.getLogger(__name__)
T = TypeVar("T")

PASSWORD_TTL = (
    300.0  # seconds; a rotated Secret is picked up within this, or at once on auth failure
)
TIMEOUT = 5.0  # seconds: connect, and any command that should not block
# Sessions whose lengths one pipelined round trip reads (two commands each).
PIPELINE_SESSIONS = 1000


def work_channel(database: int) -> str:
    """The channel producers may PUBLISH a queue name on, after pushing to it."""
    return f"usersession:work@{database}"


def reply_key(queue: str, message_id: str) -> str:
    return f"{queue}:reply:{message_id}"


def session_keys_pattern(queue: str) -> str:
    """SCAN pattern for reply keys, with glob characters in the queue name escaped."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in queue)
    return f"{escaped}:reply:*"


@dataclass(frozen=True)
class QueueTarget:
    """Where one session's queue lives, and which Secrets hold its credentials."""

    host: str
    port: int
    database: int
    secret_namespace: str
    secret_name: str
    secret_key: str
    queue: str
    username: KeyRef | None = None
    tls: RedisTls | None = None
    # The name the server's certificate is checked against, when not host.
    server_name: str | None = None

    @classmethod
    def of(cls, session: Session, settings: OperatorSettings) -> QueueTarget:
        redis = session.redis
        host, port = redis.host, redis.port
        server_name = redis.tls.server_name if redis.tls else None
        # The operator may reach the default Redis at another address than pods do.
        if settings.redis_operator_address and redis.address == settings.redis.address:
            host, port = parse_address(
                settings.redis_operator_address, "USERSESSION_REDIS_OPERATOR_ADDRESS"
            )
            # The certificate names the server as pods reach it, not the detour.
            server_name = server_name or redis.host
        secret = redis.password_secret
        return cls(
            host,
            port,
            redis.database,
            session.namespace,
            secret.name,
            secret.key,
            session.queue_name,
            username=redis.username_secret,
            tls=redis.tls,
            server_name=server_name,
        )


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


class RedisQueues:
    """The operator's side: queue depths of all sessions, and key cleanup."""

    def __init__(
        self, read_secret: SecretReader, read_config_map: ConfigMapReader | None = None
    ) -> None:
        self.connections = RedisConnections(read_secret, read_config_map)

    async def close(self) -> None:
        await self.connections.close()

    async def depths(self, targets: Mapping[Key, QueueTarget]) -> dict[Key, QueueReading]:
        """LLEN of every session's queue and processing list: pipelined per Redis
        server, a round trip per PIPELINE_SESSIONS sessions, never one per session."""
        groups: dict[tuple[str, int, int, str], list[tuple[Key, QueueTarget]]] = {}
        readings: dict[Key, QueueReading] = {}
        for key, target in targets.items():
            try:
                _, credentials = await self.connections.client(target)
            except Exception as exc:  # a missing Secret is this session's problem only
                readings[key] = QueueReading(None, error=describe(exc))
                continue
            server = (target.host, target.port, target.database, credentials)
            groups.setdefault(server, []).append((key, target))
        results = await asyncio.gather(*(self._llen_all(members) for members in groups.values()))
        for result in results:
            readings.update(result)
        return readings

    async def _llen_all(self, members: list[tuple[Key, QueueTarget]]) -> dict[Key, QueueReading]:
        """Both lengths of every session on one server: pipelined, PIPELINE_SESSIONS
        sessions per round trip, so that ten thousand sessions take ten round
        trips and none of them holds the event loop for long."""
        readings: dict[Key, QueueReading] = {}
        for start in range(0, len(members), PIPELINE_SESSIONS):
            readings |= await self._llen_some(members[start : start + PIPELINE_SESSIONS])
        return readings

    async def _llen_some(self, members: list[tuple[Key, QueueTarget]]) -> dict[Key, QueueReading]:
        async def llens(client: aioredis.Redis) -> list[int]:
            pipe = client.pipeline(transaction=False)
            for _, member in members:
                pipe.llen(member.queue)
                pipe.llen(processing_key(member.queue))
            return [int(n) for n in await pipe.execute()]

        try:
            lengths = await self.connections.run(members[0][1], llens)
        except (RedisError, OSError, LookupError) as exc:
            return {key: QueueReading(None, error=describe(exc)) for key, _ in members}
        return {
            key: QueueReading(waiting, in_flight)
            for (key, _), waiting, in_flight in zip(
                members, lengths[::2], lengths[1::2], strict=True
            )
        }

    async def delete_session_keys(self, target: QueueTarget) -> list[str]:
        """Remove the session's queue, processing list and replies; returns the keys removed."""
        client, _ = await self.connections.client(target)
        keys = [target.queue, processing_key(target.queue)]
        keys += [
            k.decode() if isinstance(k, bytes) else k
            async for k in client.scan_iter(match=session_keys_pattern(target.queue), count=500)
        ]
        existing = [
            k for k, exists in zip(keys, await _exists_each(client, keys), strict=True) if exists
        ]
        if existing:
            await client.unlink(*existing)
        return existing


async def _exists_each(client: aioredis.Redis, keys: Iterable[str]) -> list[bool]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.exists(key)
    return [bool(n) for n in await pipe.execute()]


def describe(exc: BaseException) -> str:
    """A Redis failure for status, logs and API errors (shortened)."""
    # redis-py's messages name the host and the failure, never the password.
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text:
        # ssl's own words do not say which setting to look at.
        text = f"TLS: Redis's certificate does not verify against the configured CA: {text}"
    return f"{type(exc).__name__}: {text}"[:300]
