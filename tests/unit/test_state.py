"""ClusterState: the operator's watch-fed view of sessions and their children."""

from __future__ import annotations

import copy
from types import MappingProxyType
from typing import Any

import pytest

from usersession_operator.session.names import INSTANCE_LABEL, MAX_CHILD_NAME, child_name, labels
from usersession_operator.state import PRESENT, ClusterState, QueueReading, ReconcileResult

NAMESPACE = "team-a"
LONG_NAME = ("user-session-for-" + "x" * 300)[:253]


def session(name: str = "alice", namespace: str = NAMESPACE, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "sessions.ai-infra.dev/v1alpha1",
        "kind": "UserSession",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"{name[:20]}-uid",
            "generation": 1,
            "labels": {"argocd.argoproj.io/instance": "sessions"},
            "finalizers": ["sessions.ai-infra.dev/redis-cleanup"],
        },
        "spec": {
            "userId": f"{name[:20]}@example.com",
            "workload": {"image": "img", "env": [{"name": "A", "value": "1"}]},
            **spec,
        },
    }


def child(
    kind: str, session_name: str = "alice", namespace: str = NAMESPACE, component: str = "x"
) -> dict[str, Any]:
    """A child as a watch delivers it: named and labelled after its session."""
    api = "apps/v1" if kind == "Deployment" else "keda.sh/v1alpha1"
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {
            "name": child_name(session_name),
            "namespace": namespace,
            "labels": labels(session_name, component),
        },
        "spec": {"replicas": 0},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def pod(name: str, session_name: str = "alice", phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {**labels(session_name, "session-worker"), "pod-template-hash": "5d8f"},
        },
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]},
    }


# -- sessions -----------------------------------------------------------------


def test_upsert_stores_the_session_under_namespace_and_name() -> None:
    state = ClusterState()
    body = session()
    key = state.upsert_session(body)
    assert key == (NAMESPACE, "alice")
    assert state.sessions[key] == body


def test_upsert_replaces_the_previous_version() -> None:
    state = ClusterState()
    key = state.upsert_session(session())
    state.upsert_session(session(suspend=True))
    assert state.sessions[key]["spec"]["suspend"] is True
    assert len(state.sessions) == 1


def test_same_name_in_two_namespaces_are_two_sessions() -> None:
    state = ClusterState()
    a = state.upsert_session(session(namespace="team-a"))
    b = state.upsert_session(session(namespace="team-b"))
    assert a != b
    assert len(state.sessions) == 2
    assert state.session_for_child(child("Deployment", namespace="team-b")) == b


def test_forget_session_clears_everything_kept_per_session() -> None:
    state = ClusterState()
    alice = state.upsert_session(session("alice"))
    bob = state.upsert_session(session("bob"))
    for key in (alice, bob):
        state.queues[key] = QueueReading(depth=3)
        state.reconciled[key] = ReconcileResult(generation=1)
        state.written_status[key] = {"phase": "Sleeping"}

    state.forget_session(alice)

    assert alice not in state.sessions
    assert alice not in state.queues
    assert alice not in state.reconciled
    assert alice not in state.written_status
    assert state.session_for_child(child("Deployment", "alice")) is None
    # Bob is untouched.
    assert state.sessions[bob]["metadata"]["name"] == "bob"
    assert state.queues[bob] == QueueReading(depth=3)
    assert state.reconciled[bob] == ReconcileResult(generation=1)
    assert state.written_status[bob] == {"phase": "Sleeping"}
    assert state.session_for_child(child("Deployment", "bob")) == bob


def test_forgetting_an_unknown_session_is_harmless() -> None:
    state = ClusterState()
    state.forget_session((NAMESPACE, "nobody"))
    assert state.sessions == {}


# -- children ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", LONG_NAME], ids=["short", "253-characters"])
@pytest.mark.parametrize(
    ("table", "kind"),
    [
        ("deployments", "Deployment"),
        ("scaled_objects", "ScaledObject"),
    ],
)
def test_child_is_recorded_by_instance_label_and_leads_back_to_its_session(
    name: str, table: str, kind: str
) -> None:
    state = ClusterState()
    key = state.upsert_session(session(name))
    body = child(kind, name)
    instance = body["metadata"]["labels"][INSTANCE_LABEL]
    assert len(instance) <= MAX_CHILD_NAME

    state.record_child(getattr(state, table), body, deleted=False)

    assert state.child_key(key) == (NAMESPACE, instance)
    kept = getattr(state, table)[state.child_key(key)]
    assert kept["metadata"]["name"] == body["metadata"]["name"]
    assert kept["status"] == body["status"]
    assert state.session_for_child(body) == key


@pytest.mark.parametrize("name", ["alice", LONG_NAME], ids=["short", "253-characters"])
def test_a_trigger_authentication_is_kept_as_present_only(name: str) -> None:
    # Status asks only whether it exists: one shared object stands for all of them.
    state = ClusterState()
    key = state.upsert_session(session(name))
    body = child("TriggerAuthentication", name)
    state.record_child(state.trigger_authentications, body, deleted=False)
    assert state.trigger_authentications[state.child_key(key)] is PRESENT
    assert state.session_for_child(body) == key
    state.record_child(state.trigger_authentications, body, deleted=True)
    assert state.child_key(key) not in state.trigger_authentications


def test_long_session_name_is_not_its_instance_label() -> None:
    assert len(LONG_NAME) == 253
    assert child_name(LONG_NAME) != LONG_NAME
    state = ClusterState()
    key = state.upsert_session(session(LONG_NAME))
    impostor = child("Deployment", "alice")
    impostor["metadata"]["labels"][INSTANCE_LABEL] = LONG_NAME[:63]
    assert state.session_for_child(impostor) is None
    assert state.session_for_child(child("Deployment", LONG_NAME)) == key


def test_deleted_child_is_removed() -> None:
    state = ClusterState()
    key = state.upsert_session(session())
    body = child("Deployment")
    state.record_child(state.deployments, body, deleted=False)
    state.record_child(state.deployments, body, deleted=True)
    assert state.child_key(key) not in state.deployments
    # A second delete event (a relist) is harmless.
    state.record_child(state.deployments, body, deleted=True)
    assert state.deployments == {}


def test_child_is_recorded_even_before_its_session_is_seen() -> None:
    state = ClusterState()
    state.record_child(state.deployments, child("Deployment"), deleted=False)
    assert (NAMESPACE, "alice") in state.deployments
    assert state.session_for_child(child("Deployment")) is None
    key = state.upsert_session(session())
    assert state.session_for_child(child("Deployment")) == key


@pytest.mark.parametrize("labels_", [None, {}, {"app": "something-else"}])
def test_objects_without_the_instance_label_are_ignored(labels_: dict[str, str] | None) -> None:
    state = ClusterState()
    state.upsert_session(session())
    body = child("Deployment")
    body["metadata"]["labels"] = labels_
    state.record_child(state.deployments, body, deleted=False)
    state.record_pod({**body, "kind": "Pod"}, deleted=False)
    assert state.deployments == {}
    assert state.pods == {}
    assert state.session_for_child(body) is None


def test_child_in_another_namespace_is_not_the_sessions() -> None:
    state = ClusterState()
    state.upsert_session(session(namespace="team-a"))
    assert state.session_for_child(child("Deployment", namespace="team-b")) is None


# -- pods -------------------------------------------------------------------------


def test_pods_are_grouped_per_session_and_the_empty_group_removed() -> None:
    state = ClusterState()
    alice = state.child_key(state.upsert_session(session("alice")))
    bob = state.child_key(state.upsert_session(session("bob")))
    state.record_pod(pod("alice-1"), deleted=False)
    state.record_pod(pod("alice-2", phase="Pending"), deleted=False)
    state.record_pod(pod("bob-1", "bob"), deleted=False)
    assert set(state.pods[alice]) == {"alice-1", "alice-2"}
    assert set(state.pods[bob]) == {"bob-1"}

    updated = pod("alice-2", phase="Running")
    state.record_pod(updated, deleted=False)
    assert state.pods[alice]["alice-2"]["status"]["phase"] == "Running"

    state.record_pod(pod("alice-1"), deleted=True)
    assert set(state.pods[alice]) == {"alice-2"}
    state.record_pod(pod("alice-2"), deleted=True)
    assert alice not in state.pods
    assert set(state.pods[bob]) == {"bob-1"}


def test_deleting_an_unknown_pod_leaves_no_empty_group() -> None:
    state = ClusterState()
    state.record_pod(pod("ghost"), deleted=True)
    assert state.pods == {}


def test_pods_of_a_long_named_session_are_found_by_its_child_key() -> None:
    state = ClusterState()
    key = state.upsert_session(session(LONG_NAME))
    state.record_pod(pod(child_name(LONG_NAME) + "-5d8f-abcde", LONG_NAME), deleted=False)
    assert list(state.pods[state.child_key(key)]) == [child_name(LONG_NAME) + "-5d8f-abcde"]


# -- snapshots ----------------------------------------------------------------------


def _mutate(body: dict[str, Any]) -> None:
    body["metadata"]["labels"]["mutated"] = "yes"
    body["metadata"]["name"] = "mutated"
    body.setdefault("status", {})["phase"] = "Mutated"
    body["status"].setdefault("conditions", []).append({"type": "Mutated"})


def test_session_snapshot_is_a_deep_copy() -> None:
    state = ClusterState()
    body = session()
    original = copy.deepcopy(body)
    key = state.upsert_session(body)
    _mutate(body)
    body["spec"]["workload"]["env"][0]["value"] = "changed"
    assert state.sessions[key] == original


def test_child_and_pod_snapshots_are_deep_copies() -> None:
    state = ClusterState()
    deployment, running = child("Deployment"), pod("alice-1")
    original_deployment, original_pod = copy.deepcopy(deployment), copy.deepcopy(running)
    state.record_child(state.deployments, deployment, deleted=False)
    state.record_pod(running, deleted=False)
    _mutate(deployment)
    _mutate(running)
    kept_deployment = state.deployments[(NAMESPACE, "alice")]
    kept_pod = state.pods[(NAMESPACE, "alice")]["alice-1"]
    for kept, original in ((kept_deployment, original_deployment), (kept_pod, original_pod)):
        assert kept["metadata"]["name"] == original["metadata"]["name"]
        assert kept["status"] == original["status"]


def test_a_child_is_kept_without_what_status_never_reads() -> None:
    state = ClusterState()
    full = child("Deployment")
    full["metadata"]["managedFields"] = [{"manager": "usersession-operator"}]
    full["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{...the whole object...}",
        "autoscaling.keda.sh/paused-replicas": "0",
    }
    full["spec"]["template"] = {"spec": {"containers": [{"name": "worker", "image": "img"}]}}
    state.record_child(state.deployments, full, deleted=False)
    kept = state.deployments[(NAMESPACE, "alice")]
    assert kept["spec"] == {"replicas": 0}
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"autoscaling.keda.sh/paused-replicas": "0"}
    assert kept["status"] == full["status"]
    # KEDA's bookkeeping in a ScaledObject's status is not kept, its conditions are.
    scaled = child("ScaledObject")
    scaled["status"] |= {"externalMetricNames": ["s0-redis-q"], "health": {"s0": {}}}
    state.record_child(state.scaled_objects, scaled, deleted=False)
    assert state.scaled_objects[(NAMESPACE, "alice")]["status"] == {
        "conditions": scaled["status"]["conditions"]
    }


def test_snapshot_of_a_read_only_view_is_plain_mutable_data() -> None:
    # kopf hands out read-only mapping views over its own, changing, data.
    raw = session()
    backing = copy.deepcopy(raw)
    view = MappingProxyType(
        {
            **backing,
            "metadata": MappingProxyType(backing["metadata"]),
            "spec": MappingProxyType(backing["spec"]),
        }
    )
    state = ClusterState()
    key = state.upsert_session(view)
    stored = state.sessions[key]
    assert stored == raw
    assert type(stored["metadata"]) is dict
    assert type(stored["spec"]) is dict
    backing["metadata"]["labels"]["later"] = "event"
    backing["spec"]["suspend"] = True
    assert stored == raw


def test_session_for_child_after_forget_and_re_create() -> None:
    state = ClusterState()
    key = state.upsert_session(session(LONG_NAME))
    state.forget_session(key)
    assert state.session_for_child(child("Deployment", LONG_NAME)) is None
    assert state.upsert_session(session(LONG_NAME)) == key
    assert state.session_for_child(child("Deployment", LONG_NAME)) == key
