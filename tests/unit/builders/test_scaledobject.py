from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from usersession_operator.builders.scaledobject import build_scaled_object
from usersession_operator.session.model import Session, WarmSchedule
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings

MakeSession = Callable[..., Session]
PAUSED = "autoscaling.keda.sh/paused-replicas"


def test_scales_the_deployment_between_zero_and_one(make_session: MakeSession) -> None:
    manifest = build_scaled_object(make_session())
    assert (manifest["apiVersion"], manifest["kind"]) == ("keda.sh/v1alpha1", "ScaledObject")
    assert manifest["metadata"]["name"] == "alice"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/component"] == "scaler"
    assert manifest["metadata"]["ownerReferences"][0]["controller"] is True
    spec = manifest["spec"]
    assert spec["scaleTargetRef"] == {"name": "alice"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 1)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (10, 120)


def test_redis_trigger_metadata_is_all_strings(make_session: MakeSession) -> None:
    session = make_session(
        queue={"name": "jobs:alice", "activationLength": 2, "targetLength": 5},
        scaling={"idleTimeoutSeconds": 900, "pollingIntervalSeconds": 3},
        redis={"address": "[fd00::1]:6379", "database": 9},
    )
    manifest = build_scaled_object(session)
    queue, in_flight = manifest["spec"]["triggers"]
    assert (queue["type"], queue["name"]) == ("redis", "queue")
    assert queue["metadata"] == {
        "address": "[fd00::1]:6379",
        "listName": "jobs:alice",
        "listLength": "5",
        "activationListLength": "2",
        "databaseIndex": "9",
    }
    for trigger in (queue, in_flight):
        assert all(isinstance(v, str) for v in trigger["metadata"].values())
        assert trigger["authenticationRef"] == {"name": "alice"}
    assert (manifest["spec"]["pollingInterval"], manifest["spec"]["cooldownPeriod"]) == (3, 900)


def test_messages_in_flight_keep_the_session_awake(make_session: MakeSession) -> None:
    # Busy means busy: a worker's parked message counts as activity, with the
    # same server and credentials as the queue, whatever the queue's thresholds.
    session = make_session(queue={"name": "jobs:alice", "activationLength": 3, "targetLength": 5})
    queue, in_flight = build_scaled_object(session)["spec"]["triggers"]
    assert (in_flight["type"], in_flight["name"]) == ("redis", "in-flight")
    assert in_flight["metadata"] == {
        **queue["metadata"],
        "listName": "jobs:alice:processing",
        "listLength": "1",
        "activationListLength": "0",
    }


def test_fast_wake_trigger_only_with_a_push_address(make_session: MakeSession) -> None:
    assert len(build_scaled_object(make_session())["spec"]["triggers"]) == 2
    session = replace(make_session(), push_address="usersession-operator.ops.svc:9443")
    queue, in_flight, push = build_scaled_object(session)["spec"]["triggers"]
    # Added to the redis triggers, never instead: with the operator down KEDA still
    # wakes the session by polling the lists itself.
    assert (queue["type"], in_flight["type"]) == ("redis", "redis")
    assert push == {
        "type": "external-push",
        "name": "fast-wake",
        "metadata": {"scalerAddress": "usersession-operator.ops.svc:9443"},
    }


def test_fast_wake_over_tls_asks_keda_for_tls_and_names_no_certificate(
    make_session: MakeSession,
) -> None:
    session = replace(make_session(), push_address="uso.ops.svc:9443", push_tls=True)
    push = build_scaled_object(session)["spec"]["triggers"][2]
    # KEDA verifies the server against its own trusted CAs: nothing per namespace.
    assert push["metadata"] == {"scalerAddress": "uso.ops.svc:9443", "enableTLS": "true"}


def test_suspended_session_is_paused_at_zero(make_session: MakeSession) -> None:
    manifest = build_scaled_object(make_session(suspend=True))
    assert manifest["metadata"]["annotations"] == {PAUSED: "0"}


def test_active_session_has_no_annotations_key(make_session: MakeSession) -> None:
    # Absent, not empty, so server-side apply drops the pause annotation on resume.
    assert "annotations" not in build_scaled_object(make_session(suspend=False))["metadata"]
    assert "annotations" not in build_scaled_object(make_session())["metadata"]


def test_long_names_point_at_the_shortened_children(make_session: MakeSession) -> None:
    session = make_session()
    session = replace(session, name="b" * 120)
    manifest = build_scaled_object(session)
    name = manifest["metadata"]["name"]
    assert len(name) <= 52
    assert manifest["spec"]["scaleTargetRef"]["name"] == name
    for trigger in manifest["spec"]["triggers"]:
        assert trigger["authenticationRef"]["name"] == name


def test_each_warm_schedule_is_a_cron_trigger_holding_one_replica(
    make_session: MakeSession,
) -> None:
    windows = (
        WarmSchedule("Europe/Berlin", "08:30", "12:00", ("Mon", "Tue", "Wed", "Thu", "Fri")),
        WarmSchedule("UTC", "07:05", "09:00", ("Sun",)),
        WarmSchedule("America/New_York", "18:00", "23:59"),  # every day
    )
    session = replace(make_session(), warm_schedules=windows)
    triggers = build_scaled_object(session)["spec"]["triggers"]
    # After the redis triggers, which keep counting inside a window.
    assert [t["type"] for t in triggers] == ["redis", "redis", "cron", "cron", "cron"]
    assert [t["name"] for t in triggers[2:]] == ["warm-0", "warm-1", "warm-2"]
    assert [t["metadata"] for t in triggers[2:]] == [
        {
            "timezone": "Europe/Berlin",
            "start": "30 8 * * 1,2,3,4,5",
            "end": "0 12 * * 1,2,3,4,5",
            "desiredReplicas": "1",
        },
        {"timezone": "UTC", "start": "5 7 * * 0", "end": "0 9 * * 0", "desiredReplicas": "1"},
        {
            "timezone": "America/New_York",
            "start": "0 18 * * *",
            "end": "59 23 * * *",
            "desiredReplicas": "1",
        },
    ]


def test_with_the_push_path_work_in_flight_needs_no_redis_trigger_of_its_own(
    make_body: Callable[..., dict[str, Any]], settings: OperatorSettings
) -> None:
    # The push trigger reports waiting plus in flight: a second Redis client of KEDA's
    # per session would only double what KEDA costs Redis.
    def triggers(with_settings: OperatorSettings) -> list[str]:
        built = build_scaled_object(session_from_body(make_body(), with_settings))
        return [t["name"] for t in built["spec"]["triggers"]]

    pushed = replace(settings, push_address="uso.ops.svc:9443")
    assert triggers(pushed) == ["queue", "fast-wake"]
    assert triggers(replace(pushed, processing_trigger="always")) == [
        "queue",
        "in-flight",
        "fast-wake",
    ]
    assert triggers(settings) == ["queue", "in-flight"]
