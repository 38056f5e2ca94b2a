"""The leader election's rules, without a cluster: who acquires, renews, waits or gives up."""

from __future__ import annotations

import datetime as dt

import pytest

from usersession_operator.leadership.lease import (
    LEASE_SECONDS,
    RENEW_DEADLINE_SECONDS,
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
