"""The operator hears of new work on the real Redis: keyspace events, and the work channel.

No operator and no poll here: only the KeyspaceWatcher, so whatever reaches
`changed` came through pub/sub.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
import redis

from usersession_localstack.cluster import LocalCluster
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.keyspace import KeyspaceWatcher
from usersession_operator.queues.messages import SessionLists
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.messages import Message

KEY = ("team-a", "alice")
# Long enough for a pub/sub round trip on a loaded machine; nothing else is waited on.
HEARD_WITHIN = 5.0
Scenario = Callable[[QueueTarget, asyncio.Queue[tuple[str, str]]], Awaitable[None]]


def watched(cluster: LocalCluster, scenario: Scenario) -> None:
    """Run scenario with a watcher following one session's lists on the stack's Redis."""

    async def password(*_: str) -> str:
        return cluster.redis_password

    target = QueueTarget(
        host=cluster.redis_host,
        port=cluster.redis_port,
        database=0,
        secret_namespace=KEY[0],
        secret_name="redis-auth",
        secret_key="password",
        queue=f"usersession:test:{uuid.uuid4().hex[:8]}",
    )

    async def main() -> None:
        heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        connections = RedisConnections(password)
        watcher = KeyspaceWatcher(connections, heard.put_nowait)
        watcher.add(KEY, target)
        try:
            await asyncio.sleep(1)  # subscribed by then
            await scenario(target, heard)
        finally:
            await watcher.close()
            await connections.close()

    asyncio.run(main())


def test_any_producers_push_is_heard_through_keyspace_events(
    cluster: LocalCluster, rds: redis.Redis
) -> None:
    async def scenario(target: QueueTarget, heard: asyncio.Queue[tuple[str, str]]) -> None:
        rds.lpush(target.queue, "from anyone")
        assert await asyncio.wait_for(heard.get(), HEARD_WITHIN) == KEY

    watched(cluster, scenario)


@pytest.mark.usefixtures("notifications_off")
def test_without_keyspace_events_the_session_apis_push_is_still_heard(
    cluster: LocalCluster, rds: redis.Redis
) -> None:
    async def password(*_: str) -> str:
        return cluster.redis_password

    async def scenario(target: QueueTarget, heard: asyncio.Queue[tuple[str, str]]) -> None:
        rds.lpush(target.queue, "from a producer that says nothing")
        await asyncio.sleep(1)
        assert heard.empty(), "keyspace events are off: a plain LPUSH is silent"
        api_queues = SessionLists(RedisConnections(password), max_wait_seconds=1)
        try:
            await api_queues.push(target, Message.wake(), reply_ttl=60)
            assert await asyncio.wait_for(heard.get(), HEARD_WITHIN) == KEY
        finally:
            await api_queues.close()
        assert rds.llen(target.queue) == 2

    watched(cluster, scenario)
