"""RedisConnections' credentials: read from Secrets, cached, and kept when the Secret goes."""

from __future__ import annotations

import asyncio

import pytest

from usersession_operator.queues import connections as queues
from usersession_operator.queues.connections import QueueTarget, RedisConnections

TARGET = QueueTarget("127.0.0.1", 6379, 0, "team-a", "redis-auth", "password", "q")


class Secrets:
    """A Secret reader whose Secret can be deleted."""

    def __init__(self) -> None:
        self.password: str | None = "s3cret"
        self.reads = 0

    async def read(self, namespace: str, name: str, key: str) -> str:
        self.reads += 1
        if self.password is None:
            raise LookupError(f"cannot read Secret {namespace}/{name}: 404 Not Found")
        return self.password


def test_a_deleted_secret_leaves_the_last_credentials_in_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A namespace being deleted loses its Secret before its sessions' finalizers
    # have cleaned Redis: the cleanup must still get in.
    monkeypatch.setattr(queues, "PASSWORD_TTL", 0.0)  # every call reads again
    secrets = Secrets()
    connections = RedisConnections(secrets.read)

    async def run() -> None:
        assert (await connections.credentials(TARGET)).password == "s3cret"
        secrets.password = None
        assert (await connections.credentials(TARGET)).password == "s3cret"
        assert secrets.reads == 2  # it did ask again
        with pytest.raises(LookupError):  # after a refused password, no stale answer
            await connections.credentials(TARGET, refresh=True)

    asyncio.run(run())


def test_without_earlier_credentials_a_missing_secret_is_an_error() -> None:
    secrets = Secrets()
    secrets.password = None
    with pytest.raises(LookupError, match="redis-auth"):
        asyncio.run(RedisConnections(secrets.read).credentials(TARGET))
