"""Queue depths of every session: both lists' lengths, in few round trips per server.

One server-side script per round trip reads the lengths of a thousand sessions'
lists (EVALSHA: Redis runs the LLENs, one reply carries them all), so ten thousand
sessions cost ten round trips and a few milliseconds of parsing. Where scripts
are refused (an ACL without +evalsha and +script|load, a proxy that forbids
them), the same reads go as pipelined LLENs: the same round trips, more bytes to
build and parse. The first refusal per server is logged once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import NoPermissionError, RedisError, ResponseError

from usersession_operator.queues.connections import RedisConnections, describe
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.keys import processing_key
from usersession_operator.state import Key, QueueReading

log = logging.getLogger(__name__)

# Sessions whose two lengths one round trip reads.
ROUND_TRIP_SESSIONS = 1000

# KEYS are the sessions' queues, in order; the reply is each one's length and its
# processing list's (session/keys.py names it Q:processing), two numbers a session.
# Queues go as KEYS, so Redis checks them against the caller's ACL key patterns
# (the processing list sits under the same prefix). A list that is not a list
# answers -1 for that session alone (pcall), not an error for the thousand
# sessions sharing the round trip. Half the arguments of naming both lists: the
# client's time goes into packing arguments.
LENGTHS = """
local lengths = {}
for i, queue in ipairs(KEYS) do
  for j, key in ipairs({queue, queue .. ':processing'}) do
    local n = redis.pcall('LLEN', key)
    if type(n) ~= 'number' then n = -1 end
    lengths[2 * i - 2 + j] = n
  end
end
return lengths
"""
NOT_A_LIST = -1

Server = tuple[str, int, int, str]  # host, port, database, credentials' fingerprint


class DepthReader:
    """The operator's side: LLEN of every session's queue and processing list."""

    def __init__(self, connections: RedisConnections) -> None:
        self.connections = connections
        self._no_scripts: set[Server] = set()
        self._script: AsyncScript | None = None

    async def read(self, targets: Mapping[Key, QueueTarget]) -> dict[Key, QueueReading]:
        """Both lengths of every target's lists; a session whose server or credentials
        fail gets a reading with the error, the others are unaffected."""
        readings: dict[Key, QueueReading] = {}
        # Sessions sharing a Secret reference share credentials: one lookup each.
        by_ref: dict[tuple[object, ...], list[tuple[Key, QueueTarget]]] = {}
        for key, target in targets.items():
            by_ref.setdefault(target.credentials_ref, []).append((key, target))
        servers: dict[Server, list[tuple[Key, QueueTarget]]] = {}
        for members in by_ref.values():
            target = members[0][1]
            try:
                _, fingerprint = await self.connections.client(target)
            except Exception as exc:  # a missing Secret is these sessions' problem only
                error = describe(exc)
                readings.update((key, QueueReading(None, error=error)) for key, _ in members)
                continue
            server = (target.host, target.port, target.database, fingerprint)
            servers.setdefault(server, []).extend(members)
        results = await asyncio.gather(
            *(self._read_server(server, members) for server, members in servers.items())
        )
        for result in results:
            readings.update(result)
        return readings

    async def _read_server(
        self, server: Server, members: list[tuple[Key, QueueTarget]]
    ) -> dict[Key, QueueReading]:
        readings: dict[Key, QueueReading] = {}
        for start in range(0, len(members), ROUND_TRIP_SESSIONS):
            chunk = members[start : start + ROUND_TRIP_SESSIONS]
            readings |= await self._read_chunk(server, chunk)
            await asyncio.sleep(0)  # between round trips, whoever else waits on the loop
        return readings

    async def _read_chunk(
        self, server: Server, members: list[tuple[Key, QueueTarget]]
    ) -> dict[Key, QueueReading]:
        async def lengths(client: aioredis.Redis) -> list[int]:
            if server not in self._no_scripts:
                if self._script is None:
                    self._script = client.register_script(LENGTHS)
                queues = [target.queue_key for _, target in members]
                try:
                    return [int(n) for n in await self._script(keys=queues, client=client)]
                except (NoPermissionError, ResponseError) as exc:
                    if not _scripts_refused(exc):
                        raise
                    self._no_scripts.add(server)
                    log.info(
                        "Redis %s:%s refuses scripts (%s): queue depths are read with "
                        "pipelined LLEN instead (allow +evalsha and +script|load to save "
                        "the bytes)",
                        server[0],
                        server[1],
                        describe(exc),
                    )
            pipe = client.pipeline(transaction=False)
            for _, target in members:
                pipe.llen(target.queue)
                pipe.llen(processing_key(target.queue))
            replies = await pipe.execute(raise_on_error=False)
            return [n if isinstance(n, int) else NOT_A_LIST for n in replies]

        try:
            found = await self.connections.run(members[0][1], lengths)
        except (RedisError, OSError, LookupError) as exc:
            error = describe(exc)
            return {key: QueueReading(None, error=error) for key, _ in members}
        return {
            key: _reading(target, waiting, in_flight)
            for (key, target), waiting, in_flight in zip(
                members, found[::2], found[1::2], strict=True
            )
        }


def _reading(target: QueueTarget, waiting: int, in_flight: int) -> QueueReading:
    if NOT_A_LIST in (waiting, in_flight):
        wrong = target.queue if waiting == NOT_A_LIST else processing_key(target.queue)
        return QueueReading(None, error=f"WRONGTYPE: {wrong} holds something other than a list")
    return QueueReading(waiting, in_flight)


def _scripts_refused(exc: RedisError) -> bool:
    """An ACL or a proxy saying no to scripts, not a script that failed on a key."""
    text = str(exc).lower()
    return isinstance(exc, NoPermissionError) or "unknown command" in text or "noperm" in text
