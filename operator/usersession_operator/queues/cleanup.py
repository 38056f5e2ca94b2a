"""Removing a deleted session's keys from Redis (the finalizer's job)."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.keys import processing_key, reply_keys_pattern


async def delete_session_keys(connections: RedisConnections, target: QueueTarget) -> list[str]:
    """Remove the session's queue, processing list and replies; returns the keys removed."""
    client, _ = await connections.client(target)
    keys = [target.queue, processing_key(target.queue)]
    keys += [
        k.decode() if isinstance(k, bytes) else k
        async for k in client.scan_iter(match=reply_keys_pattern(target.queue), count=500)
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
