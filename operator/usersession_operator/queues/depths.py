"""Queue depths of every session: both lists' lengths, in few round trips per server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from usersession_operator.queues.connections import RedisConnections, describe
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.keys import processing_key
from usersession_operator.state import Key, QueueReading

# Sessions whose lengths one pipelined round trip reads (two commands each).
PIPELINE_SESSIONS = 1000


class DepthReader:
    """The operator's side: LLEN of every session's queue and processing list."""

    def __init__(self, connections: RedisConnections) -> None:
        self.connections = connections

    async def read(self, targets: Mapping[Key, QueueTarget]) -> dict[Key, QueueReading]:
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
