"""The elector's loop over a small in-memory Lease store: races, takeovers, release."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from usersession_operator.kube.client import ApiException
from usersession_operator.leadership.elector import Elector
from usersession_operator.leadership.lease import LEASE_SECONDS, RENEW_DEADLINE_SECONDS, Lease


class MemoryLeases:
    """One Lease with the API server's optimistic concurrency: a write must name the
    resourceVersion it read, else 409 (the integration tests use the real server)."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.version = 0
        self.namespace, self.name = "ops", "uso"

    def put(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Write the Lease as anyone else would (no version check)."""
        self.version += 1
        self.obj = {"metadata": {"resourceVersion": str(self.version)}, "spec": dict(spec)}
        return self.obj

    def lease(self) -> Lease:
        assert self.obj is not None
        return Lease.from_object(self.obj)

    def read(self) -> dict[str, Any] | None:
        return self.obj

    def create(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        if self.obj is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        return self.put(spec)

    def replace(self, resource_version: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        if resource_version != str(self.version):
            raise ApiException(status=409, reason="Conflict")
        return self.put(spec)


def elector(
    store: MemoryLeases, identity: str, clock: Callable[[], float], **timings: Any
) -> Elector:
    return Elector(store, identity, clock, **timings)


def test_of_two_candidates_exactly_one_leads_and_the_other_waits() -> None:
    store, now = MemoryLeases(), [0.0]
    a, b = (elector(store, name, lambda: now[0]) for name in ("a", "b"))

    async def main() -> tuple[bool, bool]:
        return await a.try_once(), await b.try_once()

    assert asyncio.run(main()) == (True, False)
    assert store.lease().holder == "a"


def test_a_write_based_on_a_stale_read_loses_the_race() -> None:
    store, now = MemoryLeases(), [0.0]
    store.put(released_spec := {"holderIdentity": None, "leaseTransitions": 3})
    a, b = (elector(store, name, lambda: now[0]) for name in ("a", "b"))
    stale = store.lease()

    async def main() -> bool:
        assert await a.try_once()  # a takes the released Lease first...
        b.lease = stale
        return await b.renew()  # ...b's write, based on what it read before, is refused

    assert released_spec["leaseTransitions"] == 3
    assert asyncio.run(main()) is False
    assert store.lease().holder == "a"
    assert store.lease().transitions == 4


def test_a_standby_takes_over_only_after_the_lease_stops_changing() -> None:
    store, now = MemoryLeases(), [0.0]
    a, b = (elector(store, name, lambda: now[0]) for name in ("a", "b"))

    async def main() -> list[bool]:
        seen = [await a.try_once()]
        for _ in range(3):  # a renews every 2 s: b keeps waiting
            now[0] += 2
            seen += [await a.try_once(), await b.try_once()]
        now[0] += LEASE_SECONDS - 0.5  # a has died: not yet a full lease since its last renewal
        seen.append(await b.try_once())
        now[0] += 0.5
        seen.append(await b.try_once())
        return seen

    assert asyncio.run(main()) == [True, True, False, True, False, True, False, False, True]
    assert store.lease().holder == "b"


def test_keeping_ends_when_someone_else_holds_the_lease() -> None:
    store, now = MemoryLeases(), [0.0]
    a = elector(store, "a", lambda: now[0], renew_every_seconds=0.01)

    async def main() -> str:
        assert await a.try_once()
        store.put({"holderIdentity": "intruder", "leaseDurationSeconds": 10})
        return await asyncio.wait_for(a.keep(), 5)

    assert asyncio.run(main()) == "intruder holds it now"


def test_keeping_ends_when_renewals_fail_past_the_deadline() -> None:
    store, now = MemoryLeases(), [0.0]
    a = elector(store, "a", lambda: now[0], renew_every_seconds=0.01)

    def unreachable(*_: object) -> dict[str, Any]:
        now[0] += 3  # each failing attempt costs time
        raise OSError("connection refused")

    async def main() -> str:
        assert await a.try_once()
        store.replace = unreachable  # type: ignore[method-assign]
        return await asyncio.wait_for(a.keep(), 5)

    assert asyncio.run(main()) == f"not renewed for {RENEW_DEADLINE_SECONDS:g} s"
    assert now[0] > RENEW_DEADLINE_SECONDS


def test_release_leaves_no_holder_and_only_if_it_was_ours() -> None:
    store, now = MemoryLeases(), [0.0]
    a, b = (elector(store, name, lambda: now[0]) for name in ("a", "b"))

    async def main() -> None:
        assert await a.try_once()
        b.lease = store.lease()  # b knows the Lease but does not hold it
        await b.release()
        assert store.lease().holder == "a"
        await a.release()

    asyncio.run(main())
    assert store.lease().holder == ""


def test_release_after_a_renewal_whose_answer_was_lost_still_releases() -> None:
    store, now = MemoryLeases(), [0.0]
    a = elector(store, "a", lambda: now[0])

    async def main() -> None:
        assert await a.try_once()
        stale = a.lease
        assert await a.renew()  # the write landed, but say its answer never came back:
        a.lease = stale
        await a.release()

    asyncio.run(main())
    assert store.lease().holder == ""


def test_the_timings_are_settings() -> None:
    store, now = MemoryLeases(), [0.0]
    a = elector(
        store,
        "a",
        lambda: now[0],
        lease_seconds=30,
        renew_every_seconds=0.01,
        renew_deadline_seconds=20.0,
    )

    def unreachable(*_: object) -> dict[str, Any]:
        now[0] += 3
        raise OSError("connection refused")

    async def main() -> str:
        assert await a.try_once()
        assert store.obj is not None
        assert store.obj["spec"]["leaseDurationSeconds"] == 30  # what standbys go by
        store.replace = unreachable  # type: ignore[method-assign]
        return await asyncio.wait_for(a.keep(), 5)

    assert asyncio.run(main()) == "not renewed for 20 s"
    assert 20 < now[0] <= 23  # the deadline given, not the default's 8 s


def test_a_standby_looks_again_at_spread_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    # Standbys (of one release, or many on one API server) must not call in step:
    # each wait is the renew period spread by +/- a fifth, as client-go jitters it.
    store, now = MemoryLeases(), [0.0]
    store.put({"holderIdentity": "leader", "leaseDurationSeconds": 10})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 20:
            raise asyncio.CancelledError

    monkeypatch.setattr(asyncio, "sleep", sleep)
    b = elector(store, "b", lambda: now[0], renew_every_seconds=2.0)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(b.acquire())
    assert all(1.6 <= w <= 2.4 for w in waits), waits
    assert len(set(waits)) > 1, waits
