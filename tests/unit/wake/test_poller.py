"""The poller's reactor: work is pushed to KEDA before, and regardless of, status writes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from support.controllers import NoKeyspaceEvents, no_secret
from usersession_operator.queues.connections import RedisConnections
from usersession_operator.queues.targets import QueueTarget
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key, QueueReading
from usersession_operator.wake.poller import Poller

SETTINGS = OperatorSettings()
ALICE, BOB = ("team-a", "alice"), ("team-a", "bob")


def _target(key: Key) -> QueueTarget:
    body = {
        "metadata": {"namespace": key[0], "name": key[1], "uid": f"{key[1]}-uid"},
        "spec": {"userId": key[1], "workload": {"image": "worker:1"}},
    }
    return QueueTarget.of(session_from_body(body, SETTINGS), SETTINGS)


class BusyLists:
    """Every list read holds one message; the real reads are in the integration tier."""

    async def read(self, targets: Mapping[Key, QueueTarget]) -> dict[Key, QueueReading]:
        return {key: QueueReading(1, 0) for key in targets}


def test_the_reactor_reads_and_pushes_a_session_at_once_and_says_its_status_is_due() -> None:
    async def main() -> None:
        poller = Poller(ClusterState(), RedisConnections(no_secret))
        poller.depths = BusyLists()  # type: ignore[assignment]
        poller.watcher = NoKeyspaceEvents()  # type: ignore[assignment]
        poller.follow(ALICE, _target(ALICE))
        pushed = poller.push.subscribe(poller.state.child_key(ALICE))
        reactions = poller.reactions()
        poller.list_changed(ALICE)
        assert await asyncio.wait_for(anext(reactions), 1) == [ALICE]
        assert pushed.get_nowait() is True
        poller.list_changed(ALICE)  # again within a second: read, but its status waits
        poller.list_changed(BOB)  # not followed: ignored
        assert await asyncio.wait_for(anext(reactions), 2) == [ALICE]
        await poller.close()

    asyncio.run(main())


def test_a_forgotten_session_is_not_read_again() -> None:
    async def main() -> None:
        poller = Poller(ClusterState(), RedisConnections(no_secret))
        poller.depths = BusyLists()  # type: ignore[assignment]
        poller.watcher = NoKeyspaceEvents()  # type: ignore[assignment]
        poller.follow(ALICE, _target(ALICE))
        assert await poller.poll_once() == {ALICE}
        poller.forget(ALICE)
        assert await poller.poll_once() == set()

    asyncio.run(main())
