"""Storage, start timeout, warm hours and expiry, with the real controller-manager,
scheduler, KEDA and Redis."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from support.sessions import FAST_SCALING, IMAGE, Api, condition, unique
from usersession_localstack.loopback import wait_for

pytestmark = pytest.mark.usefixtures("operator")

NODE = "kwok-node-0"


@pytest.fixture
def zone(api: Api) -> Iterator[str]:
    """A node label no node has yet; the test may give it to the node, and it goes after."""
    key = f"usersession-test/{unique('zone')}"
    yield key
    api.core.patch_node(NODE, {"metadata": {"labels": {key: None}}})


def test_a_session_that_cannot_start_says_why_and_recovers_by_itself(
    api: Api, session_namespace: str, rds: redis.Redis, zone: str
) -> None:
    ns, name = session_namespace, unique()
    api.create(
        ns,
        name,
        workload={"image": IMAGE, "nodeSelector": {zone: "yes"}},  # no node fits, yet
        scaling={**FAST_SCALING, "startTimeoutSeconds": 3},
    )
    queue = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]
    rds.lpush(queue, '{"type": "wake"}')
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Degraded", timeout=60)
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "StartTimeout")
    # The scheduler's own words reach the user.
    assert "Unschedulable" in ready["message"] and "node" in ready["message"], ready
    assert ("Warning", "StartTimeout", ready["message"]) in api.events(ns, name)

    api.core.patch_node(NODE, {"metadata": {"labels": {zone: "yes"}}})
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running", timeout=60)


def _clock_in_daytime() -> tuple[str, dt.datetime]:
    """A fixed-offset zone where it is daytime now, and the time there: a window
    opening in the next minutes then never crosses midnight, whenever this runs."""
    utc = dt.datetime.now(dt.UTC)
    offset = 12 - utc.hour  # -11 .. 12, all valid Etc/GMT zones
    # POSIX signs: Etc/GMT-3 is three hours ahead of UTC.
    zone = "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return zone, utc + dt.timedelta(hours=offset)


def test_a_warm_window_keeps_an_idle_session_up_then_lets_it_sleep(
    api: Api, session_namespace: str
) -> None:
    ns, name = session_namespace, unique()
    zone, now = _clock_in_daytime()
    # The next whole minute at least 15 s away: the session is asleep before it opens.
    opens = (now + dt.timedelta(seconds=75)).replace(second=0, microsecond=0)
    closes = opens + dt.timedelta(minutes=1)
    window = {"timezone": zone, "start": f"{opens:%H:%M}", "end": f"{closes:%H:%M}"}
    api.create(ns, name, scaling={**FAST_SCALING, "warmSchedules": [window]})
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None and scaled["spec"]["triggers"][-1]["type"] == "cron"
    assert api.replicas(ns, name) == 0

    # No message at all: KEDA's cron trigger wakes it when the window opens...
    api.wait_replicas(ns, name, 1, timeout=120)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running", timeout=30)
    # ...keeps it up past the idle timeout (5 s) while the window lasts...
    time.sleep(3 * FAST_SCALING["idleTimeoutSeconds"])
    assert api.replicas(ns, name) == 1
    # ...and lets it sleep once the window has closed.
    api.wait_replicas(ns, name, 0, timeout=120)


def test_an_abandoned_session_expires_and_one_holding_work_does_not(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns = session_namespace
    abandoned, holding = unique("abandoned"), unique("holding")
    for name in (abandoned, holding):
        # A message waits below activationLength: asleep, but not to be lost.
        queue = {"activationLength": 5} if name == holding else {}
        api.create(ns, name, queue=queue, expireAfterIdleSeconds=10)
    queues = {
        name: api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")["queueName"]
        for name in (abandoned, holding)
    }
    rds.lpush(queues[holding], '{"type": "wake"}')
    reply = f"{queues[abandoned]}:reply:left-over"
    rds.set(reply, "an old reply")

    wait_for(lambda: api.session(ns, abandoned) is None, 60)
    assert ("Normal", "Expired") in [e[:2] for e in api.events(ns, abandoned)]
    assert not rds.exists(reply), "expiry goes through the finalizer, which cleans Redis"
    session: dict[str, Any] | None = api.session(ns, holding)
    assert session is not None and not session["metadata"].get("deletionTimestamp")
    assert rds.llen(queues[holding]) == 1


def _volume(name: str, storage_class: str) -> dict[str, Any]:
    """A PersistentVolume only claims of storage_class can bind; kwok pods never use it."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/usersession-test/{name}"},
        },
    }


@pytest.fixture
def storage_class(api: Api) -> Iterator[str]:
    """A class name of its own: its claims bind only to the volumes this test makes."""
    name = unique("class")
    yield name
    for volume in api.core.list_persistent_volume().items:
        if volume.spec.storage_class_name == name:
            api.core.delete_persistent_volume(volume.metadata.name)


def _claim(api: Api, ns: str, name: str) -> Any:
    claims = api.core.list_namespaced_persistent_volume_claim(ns).items
    return next((c for c in claims if c.metadata.name == name), None)


def test_a_claim_binds_then_the_pod_starts_and_a_retained_claim_is_adopted(
    api: Api, session_namespace: str, rds: redis.Redis, storage_class: str
) -> None:
    ns, name = session_namespace, unique()
    storage = {"size": "1Gi", "storageClassName": storage_class, "deletionPolicy": "Retain"}
    api.create(ns, name, storage=storage, scaling={**FAST_SCALING, "startTimeoutSeconds": 3})
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert status["storage"] == {"claimName": name, "phase": "Pending"}  # no volume fits yet
    queue = status["queueName"]

    rds.lpush(queue, '{"type": "wake"}')
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Degraded", timeout=60)
    ready = condition(status, "Ready")
    assert ready["reason"] == "StorageNotBound", ready
    assert "PersistentVolumeClaims" in ready["message"], ready  # the scheduler says why

    # A volume appears: the controller-manager binds the claim, then the scheduler
    # places the pod, which mounts it.
    api.core.create_persistent_volume(_volume(unique("pv"), storage_class))
    status = api.wait_status(
        ns,
        name,
        lambda s: s.get("phase") == "Running" and s["storage"]["phase"] == "Bound",
        timeout=60,
    )
    assert status["storage"]["capacity"] == "1Gi"
    pods = api.core.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={name}")
    [volume] = [v for p in pods.items for v in p.spec.volumes or [] if v.persistent_volume_claim]
    assert volume.persistent_volume_claim.claim_name == name

    # Retain: the claim outlives its session, and the next session of the name takes it.
    claim = _claim(api, ns, name)
    rds.delete(queue)
    api.delete(ns, name)
    wait_for(lambda: api.session(ns, name) is None, 60)
    kept = _claim(api, ns, name)
    assert kept is not None and kept.metadata.uid == claim.metadata.uid
    assert not kept.metadata.owner_references and kept.status.phase == "Bound"
    api.create(ns, name, storage=storage, scaling=FAST_SCALING)
    status = api.wait_status(
        ns, name, lambda s: s.get("phase") == "Sleeping" and s["storage"]["phase"] == "Bound"
    )
    assert _claim(api, ns, name).metadata.uid == claim.metadata.uid


def test_a_deleted_sessions_claim_goes_with_it_by_default(
    api: Api, session_namespace: str, storage_class: str
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name, storage={"size": "1Gi", "storageClassName": storage_class})
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    claim = _claim(api, ns, name)
    assert claim is not None and claim.metadata.owner_references[0].name == name
    api.delete(ns, name)
    wait_for(lambda: _claim(api, ns, name) is None, 60)  # garbage collection
