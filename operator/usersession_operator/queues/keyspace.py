"""Redis keyspace notifications: hearing at once that a session's list changed.

One pub/sub connection per Redis server subscribes to the keyspace channel of
every session's queue and processing list on it. An event only says "this list
changed"; the operator then reads the lengths itself (one small pipeline for
all sessions that changed), so a missed or duplicate event costs nothing but
time, and the regular poll still catches everything.

Keyspace notifications are off in Redis by default. The operator never turns
them on (it would be changing a shared server's configuration); it says once per
server whether they are on. Enable with `notify-keyspace-events Kgl` (keyspace
events, generic and list commands); without them, wakes go through the poll.
The same connection also hears the work channel, where the session API names
a list right after pushing to it: its messages wake at once either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import ResponseError

from usersession_operator.backoff import Backoff
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.keys import keyspace_channel, processing_key, work_channel
from usersession_operator.state import Key

# Reconnecting to a Redis whose keyspace events stopped.
RECONNECT = Backoff(first=1.0, ceiling=10.0)
log = logging.getLogger(__name__)

Server = tuple[str, int, int]  # host, port, database


class KeyspaceWatcher:
    def __init__(self, connections: RedisConnections, changed: Callable[[Key], None]) -> None:
        self.connections = connections
        self.changed = changed
        self._channels: dict[Server, dict[str, Key]] = {}
        self._followed: dict[Key, tuple[Server, tuple[str, str]]] = {}
        # What the listener of a server has still to (un)subscribe: kept apart so that
        # ten thousand channels are not compared on every message.
        self._subscribe: dict[Server, set[str]] = {}
        self._unsubscribe: dict[Server, set[str]] = {}
        self._targets: dict[Server, QueueTarget] = {}
        self._tasks: dict[Server, asyncio.Task[None]] = {}

    def add(self, key: Key, target: QueueTarget) -> None:
        """Follow a session's lists from now on (again, after a change of its queue)."""
        server = _server(target)
        names = (
            keyspace_channel(target.database, target.queue),
            keyspace_channel(target.database, processing_key(target.queue)),
        )
        if self._followed.get(key) == (server, names):
            return
        self.remove(key)
        channels = self._channels.setdefault(server, {})
        for name in names:
            channels[name] = key
            self._subscribe.setdefault(server, set()).add(name)
            self._unsubscribe.get(server, set()).discard(name)
        self._followed[key] = (server, names)
        self._targets.setdefault(server, target)
        if server not in self._tasks or self._tasks[server].done():
            self._tasks[server] = asyncio.create_task(
                self._listen(server), name=f"keyspace-{server[0]}:{server[1]}/{server[2]}"
            )

    def remove(self, key: Key) -> None:
        """Stop following a session (gone, going, or moved to another queue)."""
        followed = self._followed.pop(key, None)
        if followed is None:
            return
        server, names = followed
        channels = self._channels.get(server, {})
        for name in names:
            if channels.get(name) == key:
                del channels[name]
                self._unsubscribe.setdefault(server, set()).add(name)
                self._subscribe.get(server, set()).discard(name)
        if not channels:  # nobody left on that server: stop listening to it
            self._channels.pop(server, None)
            self._targets.pop(server, None)
            task = self._tasks.pop(server, None)
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()

    async def _listen(self, server: Server) -> None:
        failures = 0
        while server in self._channels:
            try:
                await self._listen_once(server)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke, listening must go on
                log.info("keyspace events from %s:%s: %s; reconnecting", *server[:2], exc)
                # Events may have been missed meanwhile: have every list re-read.
                for key in set(self._channels.get(server, {}).values()):
                    self.changed(key)
                failures += 1
                await asyncio.sleep(RECONNECT.delay(failures))

    async def _listen_once(self, server: Server) -> None:
        client, _ = await self.connections.client(self._targets[server], socket_timeout=None)
        await _say_whether_enabled(client, server)
        pubsub = client.pubsub()
        work = work_channel(server[2])
        # A new connection subscribes to everything followed now.
        self._subscribe[server] = set(self._channels.get(server, {}))
        self._unsubscribe[server] = set()
        await pubsub.subscribe(work)
        try:
            while server in self._channels:
                new, gone = self._subscribe[server], self._unsubscribe[server]
                if new:
                    self._subscribe[server] = set()
                    await pubsub.subscribe(*new)
                if gone:
                    self._unsubscribe[server] = set()
                    await pubsub.unsubscribe(*gone)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                channels = self._channels.get(server, {})
                while message is not None:
                    channel = _text(message["channel"])
                    if channel == work:  # the data names the list, as a keyspace channel would
                        channel = keyspace_channel(server[2], _text(message["data"]))
                    key = channels.get(channel)
                    if key is not None:
                        self.changed(key)
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2


def _server(target: QueueTarget) -> Server:
    return target.host, target.port, target.database


async def _say_whether_enabled(client: object, server: Server) -> None:
    try:
        config = await client.config_get("notify-keyspace-events")  # type: ignore[attr-defined]
    except ResponseError:  # CONFIG is often refused (managed Redis, ACLs): cannot tell
        log.info("cannot read notify-keyspace-events on %s:%s; listening anyway", *server[:2])
        return
    values = {_text(k): _text(v) for k, v in dict(config).items()}
    flags = values.get("notify-keyspace-events", "")
    if "K" in flags and ("l" in flags or "A" in flags):
        log.info("keyspace notifications on %s:%s: sessions wake at once", *server[:2])
    else:
        log.warning(
            "keyspace notifications are off on %s:%s (notify-keyspace-events=%r): sessions "
            "wake at the next poll, unless the session API sent the message; enable them "
            "with notify-keyspace-events Kgl",
            *server[:2],
            flags,
        )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
