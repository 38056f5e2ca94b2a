"""The poller's reactor: work is pushed to KEDA before, and regardless of, status writes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from usersession_operator.queues.connections import QueueTarget
from usersession_operator.session.model import Session
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings
from usersession_operator.state import ClusterState, Key, QueueReading
from usersession_operator.wake.poller import Poller

SETTINGS = OperatorSettings()
ALICE, BOB = ("team-a", "alice"), ("team-a", "bob")


def _body(key: Key) -> dict[str, Any]:
    return {
        "metadata": {"namespace": key[0], "name": key[1], "uid": f"{key[1]}-uid"},
        "spec": {"userId": key[1], "workload": {"image": "worker:1"}},
    }


class BusyQueues:
    """Every list read holds one message; the real reads are in the integration tier."""

    connections = None

    async def depths(self, targets: Mapping[Key, QueueTarget]) -> dict[Key, QueueReading]:
        return {key: QueueReading(1, 0) for key in targets}


class NoKeyspaceEvents:
    def add(self, *_: Any) -> None: ...

    def sync(self, *_: Any) -> None: ...

    async def close(self) -> None: ...


def test_a_slow_status_write_does_not_hold_back_the_next_sessions_push() -> None:
    async def main() -> None:
        state = ClusterState()
        for key in (ALICE, BOB):
            state.upsert_session(_body(key))
        unblock = asyncio.Event()
        refreshed: list[Key] = []

        async def slow_refresh(key: Key) -> None:
            await unblock.wait()  # a status PATCH to a slow API server
            refreshed.append(key)

        async def nothing() -> None: ...

        def live(key: Key) -> Session | None:
            return session_from_body(state.sessions[key], SETTINGS)

        poller = Poller(SETTINGS, state, BusyQueues(), live, slow_refresh, nothing)  # type: ignore[arg-type]
        poller.watcher = NoKeyspaceEvents()  # type: ignore[assignment]
        pushed: dict[Key, asyncio.Queue[bool]] = {}
        for key in (ALICE, BOB):
            pushed[key] = asyncio.Queue()
            poller.push._streams[state.child_key(key)] = {pushed[key]}
        reactor = asyncio.create_task(poller.react_forever())

        poller._list_changed(ALICE)
        assert await asyncio.wait_for(pushed[ALICE].get(), 1) is True
        poller._list_changed(BOB)  # while Alice's status write hangs
        assert await asyncio.wait_for(pushed[BOB].get(), 1) is True
        assert refreshed == []

        unblock.set()
        await asyncio.sleep(0.05)
        assert sorted(refreshed) == [ALICE, BOB]  # the writes still happen
        reactor.cancel()
        await poller.close()

    asyncio.run(main())
