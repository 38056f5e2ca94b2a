"""The leader election's rules, without a cluster: who acquires, renews, waits or gives up."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from kubernetes.client import ApiException

from usersession_operator.leadership import elector as leadership
from usersession_operator.leadership.elector import (
    LEASE_SECONDS,
    RENEW_DEADLINE_SECONDS,
    Elector,
    Lease,
    Move,
    Observer,
    claimed,
    decide,
    lost,
    micro_time,
    released,
)
from usersession_operator.settings import OperatorSettings

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def lease(
    holder: str = "pod-a", renew: str = "2025-03-01T11:59:59.000000Z", **spec: object
) -> Lease:
    return Lease.from_object(
        {
            "metadata": {"resourceVersion": "41"},
            "spec": {
                "holderIdentity": holder,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": "2025-03-01T11:00:00.000000Z",
                "renewTime": renew,
                "leaseTransitions": 4,
                **spec,
            },
        }
    )


def test_no_lease_is_created() -> None:
    assert decide(None, "pod-b", 0) is Move.CREATE


def test_our_own_lease_is_renewed() -> None:
    assert decide(lease("pod-b"), "pod-b", 100) is Move.RENEW


def test_a_live_holder_is_waited_for() -> None:
    assert decide(lease("pod-a"), "pod-b", LEASE_SECONDS - 0.1) is Move.WAIT


def test_a_holder_that_stopped_renewing_is_replaced_after_the_lease_duration() -> None:
    assert decide(lease("pod-a"), "pod-b", LEASE_SECONDS) is Move.ACQUIRE


def test_the_leases_own_duration_counts_not_ours() -> None:
    long = lease("pod-a", leaseDurationSeconds=60)
    assert decide(long, "pod-b", LEASE_SECONDS + 1) is Move.WAIT
    assert decide(long, "pod-b", 60) is Move.ACQUIRE


@pytest.mark.parametrize("holder", ["", None])
def test_a_released_lease_is_taken_at_once(holder: str | None) -> None:
    assert decide(lease(holder=holder), "pod-b", 0) is Move.ACQUIRE  # type: ignore[arg-type]


def test_expiry_is_measured_by_our_clock_since_the_lease_last_changed() -> None:
    # Its renewTime is an hour old by our clock (another node's clock is off):
    # that alone must not make a live holder look expired.
    observer = Observer()
    old = lease("pod-a", renew="2025-03-01T11:00:00.000000Z")
    assert observer.unchanged_for(old, now=1000.0) == 0
    assert decide(old, "pod-b", observer.unchanged_for(old, now=1005.0)) is Move.WAIT
    renewed = lease("pod-a", renew="2025-03-01T11:00:02.000000Z")
    assert observer.unchanged_for(renewed, now=1012.0) == 0  # it changed: count again
    assert observer.unchanged_for(renewed, now=1021.0) == 9
    assert decide(renewed, "pod-b", observer.unchanged_for(renewed, now=1022.0)) is Move.ACQUIRE


def test_a_new_holder_restarts_the_count_even_with_the_same_renew_time() -> None:
    observer = Observer()
    observer.unchanged_for(lease("pod-a"), now=0.0)
    assert observer.unchanged_for(lease("pod-c"), now=50.0) == 0


def test_renewing_keeps_acquire_time_and_transitions() -> None:
    spec = claimed(lease("pod-b"), "pod-b", NOW)
    assert spec == {
        "holderIdentity": "pod-b",
        "leaseDurationSeconds": LEASE_SECONDS,
        "acquireTime": "2025-03-01T11:00:00.000000Z",
        "renewTime": "2025-03-01T12:00:00.000000Z",
        "leaseTransitions": 4,
    }


def test_taking_over_counts_a_transition_and_restarts_acquire_time() -> None:
    spec = claimed(lease("pod-a"), "pod-b", NOW)
    assert spec["holderIdentity"] == "pod-b"
    assert spec["leaseTransitions"] == 5
    assert spec["acquireTime"] == spec["renewTime"] == "2025-03-01T12:00:00.000000Z"


def test_the_first_holder_has_no_transitions() -> None:
    assert claimed(None, "pod-a", NOW)["leaseTransitions"] == 0


def test_release_clears_the_holder_and_keeps_the_count() -> None:
    spec = released(lease("pod-b"), NOW)
    assert spec["holderIdentity"] is None
    assert spec["leaseTransitions"] == 4
    assert decide(
        Lease.from_object({"metadata": {"resourceVersion": "1"}, "spec": spec}), "x", 0
    ) is (Move.ACQUIRE)


def test_micro_time_always_has_six_fractional_digits() -> None:
    # The API server's MicroTime parser wants them; isoformat() drops them at .000000.
    assert micro_time(NOW) == "2025-03-01T12:00:00.000000Z"
    other_zone = NOW.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert micro_time(other_zone + dt.timedelta(microseconds=5)) == "2025-03-01T12:00:00.000005Z"


def test_the_leader_gives_up_only_after_the_renew_deadline() -> None:
    assert not lost(last_renewed=100.0, now=100.0 + RENEW_DEADLINE_SECONDS)
    assert lost(last_renewed=100.0, now=100.0 + RENEW_DEADLINE_SECONDS + 0.01)
    # ...which is before a standby may take over: it waits the full lease.
    assert RENEW_DEADLINE_SECONDS < LEASE_SECONDS


def test_settings_leader_election_off_by_default_and_named_by_the_pod() -> None:
    settings = OperatorSettings.from_env({"POD_NAME": "uso-7d9-x2", "POD_NAMESPACE": "ops"})
    election = settings.leader_election
    assert not election.enabled
    assert (election.lease_name, election.namespace, election.identity) == (
        "usersession-operator",
        "ops",
        "uso-7d9-x2",
    )


def test_settings_leader_election_from_the_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "USERSESSION_LEADER_ELECTION": "On",
            "USERSESSION_LEADER_ELECTION_LEASE": "shard-a",
            "USERSESSION_LEADER_ELECTION_NAMESPACE": "usersession-system",
            "POD_NAMESPACE": "ignored-when-the-namespace-is-given",
        }
    )
    election = settings.leader_election
    assert election.enabled
    assert (election.lease_name, election.namespace) == ("shard-a", "usersession-system")
    assert election.identity  # host and process without POD_NAME
    assert OperatorSettings.from_env({}).leader_election.namespace == "default"


def test_a_malformed_switch_names_its_variable() -> None:
    with pytest.raises(ValueError, match="USERSESSION_LEADER_ELECTION must be on or off"):
        OperatorSettings.from_env({"USERSESSION_LEADER_ELECTION": "maybe"})


# -- the Elector's loop over a small in-memory Lease store ------------------------------


class MemoryLeases:
    """One Lease with the API server's optimistic concurrency: a write must name the
    resourceVersion it read, else 409 (the integration tests use the real server)."""

    def __init__(self) -> None:
        self.obj: dict[str, Any] | None = None
        self.version = 0
        self.namespace, self.name = "ops", "uso"

    def _store(self, spec: Mapping[str, Any]) -> Lease:
        self.version += 1
        self.obj = {"metadata": {"resourceVersion": str(self.version)}, "spec": dict(spec)}
        return Lease.from_object(self.obj)

    def read(self) -> Lease | None:
        return None if self.obj is None else Lease.from_object(self.obj)

    def create(self, spec: Mapping[str, Any]) -> Lease:
        if self.obj is not None:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(spec)

    def replace(self, lease: Lease, spec: Mapping[str, Any]) -> Lease:
        if lease.resource_version != str(self.version):
            raise ApiException(status=409, reason="Conflict")
        return self._store(spec)


def elector(store: MemoryLeases, identity: str, clock: Callable[[], float]) -> Elector:
    return Elector(store, identity, clock)  # type: ignore[arg-type]


def test_of_two_candidates_exactly_one_leads_and_the_other_waits() -> None:
    store, now = MemoryLeases(), [0.0]
    a, b = (elector(store, name, lambda: now[0]) for name in ("a", "b"))

    async def main() -> tuple[bool, bool]:
        return await a.try_once(), await b.try_once()

    assert asyncio.run(main()) == (True, False)
    assert store.read() is not None and store.read().holder == "a"  # type: ignore[union-attr]


def test_a_write_based_on_a_stale_read_loses_the_race() -> None:
    store, now = MemoryLeases(), [0.0]
    store._store(released_spec := {"holderIdentity": None, "leaseTransitions": 3})
    a, b = (elector(store, name, lambda: now[0]) for name in ("a", "b"))
    stale = store.read()

    async def main() -> bool:
        assert await a.try_once()  # a takes the released Lease first...
        b.lease = stale
        return await b._renew()  # ...b's write, based on what it read before, is refused

    assert released_spec["leaseTransitions"] == 3
    assert asyncio.run(main()) is False
    assert store.read().holder == "a"  # type: ignore[union-attr]
    assert store.read().transitions == 4  # type: ignore[union-attr]


def test_a_standby_takes_over_only_after_the_lease_stops_changing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
    assert store.read().holder == "b"  # type: ignore[union-attr]


def test_keeping_ends_when_someone_else_holds_the_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leadership, "RENEW_EVERY_SECONDS", 0.01)
    store, now = MemoryLeases(), [0.0]
    a = elector(store, "a", lambda: now[0])

    async def main() -> str:
        assert await a.try_once()
        store._store({"holderIdentity": "intruder", "leaseDurationSeconds": 10})
        return await asyncio.wait_for(a.keep(), 5)

    assert asyncio.run(main()) == "intruder holds it now"


def test_keeping_ends_when_renewals_fail_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leadership, "RENEW_EVERY_SECONDS", 0.01)
    store, now = MemoryLeases(), [0.0]
    a = elector(store, "a", lambda: now[0])

    def unreachable(*_: object) -> Lease:
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
        b.lease = store.read()  # b knows the Lease but does not hold it
        await b.release()
        assert store.read().holder == "a"  # type: ignore[union-attr]
        await a.release()

    asyncio.run(main())
    assert store.read().holder == ""  # type: ignore[union-attr]


def test_release_after_a_renewal_whose_answer_was_lost_still_releases() -> None:
    store, now = MemoryLeases(), [0.0]
    a = elector(store, "a", lambda: now[0])

    async def main() -> None:
        assert await a.try_once()
        stale = a.lease
        assert await a._renew()  # the write landed, but say its answer never came back:
        a.lease = stale
        await a.release()

    asyncio.run(main())
    assert store.read().holder == ""  # type: ignore[union-attr]
