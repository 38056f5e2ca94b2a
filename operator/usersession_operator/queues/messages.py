"""The session API's side of a session's Redis lists: push, depths, and waiting for replies.

Passwords come from the Secret a session references, as for the operator, and
are cached for a while; a failed AUTH re-reads the Secret once, so a rotated
password is picked up at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from usersession_operator.queues.connections import (
    TIMEOUT,
    RedisConnections,
    Unavailable,
    describe,
)
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.keys import pending_key, processing_key, reply_key, work_channel
from usersession_operator.session.messages import Message

T = TypeVar("T")
log = logging.getLogger(__name__)


class SessionLists:
    """Every call raises Unavailable (with a reason fit for a client) when Redis fails."""

    def __init__(self, connections: RedisConnections, max_wait_seconds: float) -> None:
        self._connections = connections
        self._max_wait = max_wait_seconds

    async def close(self) -> None:
        await self._connections.close()

    async def _run(
        self,
        target: QueueTarget,
        operation: Callable[[aioredis.Redis], Awaitable[T]],
        blocking: bool = False,
    ) -> T:
        # A blocking BLMOVE gets its own client, so it does not trip the short
        # socket timeout that guards every other command against a hung server.
        timeout = self._max_wait + TIMEOUT if blocking else TIMEOUT
        try:
            return await self._connections.run(target, operation, socket_timeout=timeout)
        except LookupError as exc:
            raise Unavailable(f"no Redis credentials: {exc}") from None
        except (RedisError, OSError) as exc:
            raise Unavailable(describe(exc)) from None

    async def ping(self, target: QueueTarget) -> None:
        await self._run(target, lambda conn: conn.ping())

    async def depths(self, target: QueueTarget) -> tuple[int, int]:
        """Messages waiting and messages in flight, in one round trip."""

        async def llens(conn: aioredis.Redis) -> tuple[int, int]:
            pipe = conn.pipeline(transaction=False)
            pipe.llen(target.queue)
            pipe.llen(processing_key(target.queue))
            waiting, in_flight = await pipe.execute()
            return int(waiting), int(in_flight)

        return await self._run(target, llens)

    async def push(self, target: QueueTarget, message: Message, reply_ttl: int) -> None:
        """LPUSH the message; for a chat, also mark it pending, in the same transaction.
        Then tell the operator on the work channel, so the session wakes at once."""

        async def push(conn: aioredis.Redis) -> None:
            pipe = conn.pipeline(transaction=True)
            pipe.lpush(target.queue, message.encode())
            if message.reply_to is not None:
                pipe.set(pending_key(target.queue, message.id), message.sent_at, ex=reply_ttl)
            await pipe.execute()
            # Outside the transaction: the message is safely queued whatever
            # happens to this (an ACL without the channel, say), and the
            # operator's keyspace events or poll find the work anyway.
            try:
                await conn.publish(work_channel(target.database), target.queue)
            except RedisError as exc:
                log.debug("no work signal for %s: %s", target.queue, describe(exc))

        await self._run(target, push)

    async def wait_reply(
        self, target: QueueTarget, message_id: str, seconds: float
    ) -> bytes | None:
        """Block up to `seconds` for the reply, leaving it in place.

        BLMOVE from the reply list onto itself returns the element without
        removing it, so the reply endpoint can still serve it later.
        """
        key = reply_key(target.queue, message_id)

        async def wait(conn: aioredis.Redis) -> bytes | None:
            # Redis takes fractional timeouts; redis-py's signature says int.
            found = await conn.execute_command(  # type: ignore[no-untyped-call]
                "BLMOVE", key, key, "RIGHT", "LEFT", seconds
            )
            return found if isinstance(found, bytes) else None

        return await self._run(target, wait, blocking=True)

    async def reply(self, target: QueueTarget, message_id: str) -> tuple[bytes | None, bool]:
        """(the reply if there is one, whether the message is known at all)."""
        key = reply_key(target.queue, message_id)

        async def peek(conn: aioredis.Redis) -> tuple[bytes | None, bool]:
            pipe = conn.pipeline(transaction=False)
            pipe.lindex(key, -1)
            pipe.exists(pending_key(target.queue, message_id))
            found, pending = await pipe.execute()
            return (bytes(found) if found is not None else None), bool(found is not None or pending)

        return await self._run(target, peek)
