"""The poll's reads on the real Redis: one script per round trip, with the
least-privilege ACL user, and pipelined LLEN where an ACL refuses scripts.

Round trips are counted from Redis's own INFO commandstats, not from the client.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.tlsredis import session_user_rules
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.depths import ROUND_TRIP_SESSIONS, DepthReader
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.keys import processing_key
from usersession_operator.session.redisrefs import SECRET, KeyRef
from usersession_operator.state import Key, QueueReading

SCRIPT_COMMANDS = ("+evalsha", "+script|load")


@dataclass
class AclUser:
    name: str
    password: str


@pytest.fixture
def admin(cluster: LocalCluster) -> Iterator[redis.Redis]:
    conn = redis.Redis(
        host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
    )
    yield conn
    conn.close()


def acl_user(admin: redis.Redis, scripts: bool) -> AclUser:
    """The sessions' user of docs/operations.md, or the same without scripts."""
    user = AclUser(f"depths-{uuid.uuid4().hex[:6]}", secrets.token_hex(12))
    rules = session_user_rules().split()
    if not scripts:
        rules = [r for r in rules if r not in SCRIPT_COMMANDS]
    admin.execute_command("ACL", "SETUSER", user.name, "reset", "on", f">{user.password}", *rules)
    return user


def targets(cluster: LocalCluster, user: AclUser, n: int) -> dict[Key, QueueTarget]:
    prefix = f"usersession:depths-{uuid.uuid4().hex[:6]}"
    return {
        ("depths", f"s{i}"): QueueTarget(
            host=cluster.redis_host,
            port=cluster.redis_port,
            database=0,
            secret_namespace="depths",
            secret_name="redis-auth",
            secret_key="password",
            queue=f"{prefix}:s{i}",
            username=KeyRef(SECRET, "redis-auth", "username"),
        )
        for i in range(n)
    }


def read(user: AclUser, wanted: dict[Key, QueueTarget], polls: int = 1) -> dict[Key, QueueReading]:
    """What the last of `polls` reads by one reader (as one operator's polls) found."""

    async def secret(_namespace: str, _name: str, key: str) -> str:
        return user.name if key == "username" else user.password

    async def main() -> dict[Key, QueueReading]:
        connections = RedisConnections(secret)
        reader = DepthReader(connections)
        try:
            for _ in range(polls - 1):
                await reader.read(wanted)
            return await reader.read(wanted)
        finally:
            await connections.close()

    return asyncio.run(main())


def calls(admin: redis.Redis, command: str) -> int:
    """Times the command ran (a first EVALSHA answered NOSCRIPT, then loaded, is not one)."""
    stats = admin.info("commandstats").get(f"cmdstat_{command}") or {}
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


def fill(admin: redis.Redis, wanted: dict[Key, QueueTarget]) -> dict[Key, tuple[int, int]]:
    """Every third session has work waiting, every fifth some in flight."""
    expected = {}
    pipe = admin.pipeline(transaction=False)
    for i, (key, target) in enumerate(wanted.items()):
        waiting, in_flight = (i % 3 == 0) * (i % 4 + 1), (i % 5 == 0) * 1
        for _ in range(waiting):
            pipe.lpush(target.queue, "m")
        for _ in range(in_flight):
            pipe.lpush(processing_key(target.queue), "m")
        expected[key] = (waiting, in_flight)
    pipe.execute()
    return expected


def test_the_acl_users_poll_reads_both_lists_of_each_session_in_one_script_per_round_trip(
    cluster: LocalCluster, admin: redis.Redis
) -> None:
    user = acl_user(admin, scripts=True)
    wanted = targets(cluster, user, 2 * ROUND_TRIP_SESSIONS + 500)
    expected = fill(admin, wanted)
    scripts_before, llens_before = calls(admin, "evalsha"), calls(admin, "llen")
    readings = read(user, wanted)
    assert {k: (r.depth, r.processing) for k, r in readings.items()} == expected
    assert all(r.error is None for r in readings.values())
    assert calls(admin, "evalsha") - scripts_before == 3  # 2,500 sessions, 1,000 a trip
    # The LLENs run inside the script (counted by Redis too), none from the client.
    assert calls(admin, "llen") - llens_before == 2 * len(wanted)


def test_where_the_acl_refuses_scripts_the_same_lengths_come_from_pipelined_llen(
    cluster: LocalCluster, admin: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="usersession_operator.queues.depths")
    user = acl_user(admin, scripts=False)
    wanted = targets(cluster, user, 50)
    expected = fill(admin, wanted)
    scripts_before = calls(admin, "evalsha")
    readings = read(user, wanted, polls=3)
    assert {k: (r.depth, r.processing) for k, r in readings.items()} == expected
    assert calls(admin, "evalsha") == scripts_before
    refusals = [r for r in caplog.records if "refuses scripts" in r.getMessage()]
    assert len(refusals) == 1, "the refusal is said once per server, not per poll"


def test_a_key_that_is_not_a_list_fails_its_own_session_only(
    cluster: LocalCluster, admin: redis.Redis
) -> None:
    user = acl_user(admin, scripts=True)
    wanted = targets(cluster, user, 10)
    expected = fill(admin, wanted)
    broken = ("depths", "s4")
    admin.set(processing_key(wanted[broken].queue), "not a list")
    readings = read(user, wanted)
    assert readings[broken].depth is None
    assert "WRONGTYPE" in (readings[broken].error or "")
    assert processing_key(wanted[broken].queue) in (readings[broken].error or "")
    others = {k: (r.depth, r.processing) for k, r in readings.items() if k != broken}
    assert others == {k: v for k, v in expected.items() if k != broken}


def test_a_script_cache_emptied_by_a_restart_is_loaded_again(
    cluster: LocalCluster, admin: redis.Redis
) -> None:
    user = acl_user(admin, scripts=True)
    wanted = targets(cluster, user, 20)
    expected = fill(admin, wanted)

    async def secret(_namespace: str, _name: str, key: str) -> str:
        return user.name if key == "username" else user.password

    async def main() -> tuple[dict[Key, QueueReading], dict[Key, QueueReading]]:
        connections = RedisConnections(secret)
        reader = DepthReader(connections)
        try:
            first = await reader.read(wanted)
            admin.script_flush()  # what a Redis restart or failover does to the cache
            return first, await reader.read(wanted)
        finally:
            await connections.close()

    first, second = asyncio.run(main())
    assert {k: (r.depth, r.processing) for k, r in second.items()} == expected
    assert {k: (r.depth, r.processing) for k, r in first.items()} == expected
