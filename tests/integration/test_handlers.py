"""The operator end to end: real API server, real Redis, the real handlers under KopfRunner."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import watch

from support.logs import Collect
from support.sessions import FAST_SCALING, IMAGE, Api, condition, unique
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_operator.session.model import GROUP, PLURAL, VERSION
from usersession_operator.session.names import child_name

pytestmark = pytest.mark.usefixtures("operator")


# -- creation ----------------------------------------------------------------------


def test_create_makes_three_owned_children_and_trigger_auth_really_authenticates(
    api: Api, session_namespace: str, cluster: LocalCluster
) -> None:
    ns, name = session_namespace, unique()
    owner = api.create(ns, name)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert status["observedGeneration"] == 1
    assert condition(status, "Ready")["status"] == "True"
    assert status["children"] == {
        "deployment": name,
        "scaledObject": name,
        "triggerAuthentication": name,
    }

    for kind in ("Deployment", "ScaledObject", "TriggerAuthentication"):
        child = api.child(kind, ns, name)
        assert child is not None, kind  # accepted by the API server (KEDA's own CRD schemas)
        [ref] = child["metadata"]["ownerReferences"]
        assert ref["uid"] == owner["metadata"]["uid"]
        assert ref["controller"] is True
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "usersession-operator"

    deployment = api.child("Deployment", ns, name)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 0

    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["maxReplicaCount"] == 1
    assert scaled["spec"]["cooldownPeriod"] == 120
    # The operator fixture turns the fast path on: its trigger reports work in flight
    # too, so the queue is the one list KEDA reads itself.
    trigger, push = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"usersession:{ns}:{name}"
    assert trigger["authenticationRef"]["name"] == name
    assert push["type"] == "external-push"

    # Follow the TriggerAuthentication the way KEDA does: Secret key -> password -> AUTH.
    auth = api.child("TriggerAuthentication", ns, name)
    assert auth is not None
    [ref] = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "password"
    secret = api.core.read_namespaced_secret(ref["name"], ns)
    password = base64.b64decode(secret.data[ref["key"]]).decode()
    host, port = trigger["metadata"]["address"].rsplit(":", 1)
    assert redis.Redis(host=host, port=int(port), password=password).ping() is True


def test_new_deployment_is_never_observed_with_replicas_other_than_zero(
    api: Api, session_namespace: str
) -> None:
    ns, name = session_namespace, unique()
    seen: list[int | None] = []
    stop = threading.Event()
    watcher = watch.Watch()

    def record() -> None:
        for event in watcher.stream(api.apps.list_namespaced_deployment, ns, timeout_seconds=30):
            seen.append(event["object"].spec.replicas)
            if stop.is_set():
                break

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    api.create(ns, name)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    stop.set()
    api.patch_spec(
        ns, name, {"workload": {"image": IMAGE + "-poke"}}
    )  # one more event ends the loop
    thread.join(timeout=35)
    watcher.stop()
    assert seen, "the watch saw no Deployment"
    assert set(seen) == {0}, seen
    assert api.core.list_namespaced_pod(ns).items == []


def test_spec_update_changes_children_but_never_replicas(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name, scaling=FAST_SCALING)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")

    rds.lpush(status["queueName"], "work")  # nobody consumes it: KEDA keeps the session awake
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running")

    api.patch_spec(
        ns,
        name,
        {
            "workload": {"image": IMAGE.replace("0.1.0", "0.2.0")},
            "scaling": {**FAST_SCALING, "idleTimeoutSeconds": 6},
        },
    )
    api.wait_status(ns, name, lambda s: s.get("observedGeneration") == 2)

    deployment = api.child("Deployment", ns, name)
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")
    assert deployment["spec"]["replicas"] == 1, "the operator overwrote KEDA's replicas"
    managers = {
        m["manager"]
        for m in deployment["metadata"]["managedFields"]
        if "f:replicas" in json.dumps(m.get("fieldsV1", {}))
    }
    assert "usersession-operator" not in managers
    assert "keda" in " ".join(sorted(managers)), managers  # KEDA took replicas over
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None
    assert scaled["spec"]["cooldownPeriod"] == 6

    # Asleep again (KEDA, once the queue is empty), a change must not drop
    # replicas back to the default of 1 either.
    rds.delete(status["queueName"])
    api.wait_replicas(ns, name, 0)
    api.patch_spec(ns, name, {"workload": {"image": IMAGE}})
    api.wait_status(ns, name, lambda s: s.get("observedGeneration") == 3)
    deployment = api.child("Deployment", ns, name)
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 0


def test_suspend_pauses_the_scaler_at_zero(api: Api, session_namespace: str) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name, suspend=True)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Suspended")
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None
    assert scaled["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "0"

    api.patch_spec(ns, name, {"suspend": False})
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    scaled = api.child("ScaledObject", ns, name)
    assert scaled is not None
    assert "autoscaling.keda.sh/paused-replicas" not in (
        scaled["metadata"].get("annotations") or {}
    )


# -- status --------------------------------------------------------------------------


def test_queue_depth_and_pod_state_show_in_status(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name, scaling=FAST_SCALING)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping" and "queueDepth" in s)
    assert status["queueDepth"] == 0

    rds.lpush(status["queueName"], "m1", "m2", "m3")
    status = api.wait_status(ns, name, lambda s: s.get("queueDepth") == 3)
    assert status["lastActivityTime"]
    assert condition(status, "RedisReachable")["status"] == "True"

    # KEDA wakes it; pod readiness and readyReplicas arrive by separate watches.
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Running" and s["readyReplicas"])
    assert status["pod"]["phase"] == "Running"
    assert status["pod"]["ready"] is True
    assert status["pod"]["name"].startswith(name + "-")
    assert status["replicas"] == 1
    assert status["readyReplicas"] == 1

    rds.delete(status["queueName"])
    api.wait_status(
        ns, name, lambda s: s.get("phase") == "Sleeping" and "pod" not in s and s["queueDepth"] == 0
    )


def test_redis_outage_shows_as_a_condition(
    api: Api, session_namespace: str, cluster: LocalCluster
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name)
    api.wait_status(ns, name, lambda s: condition(s, "RedisReachable")["status"] == "True")
    cluster.stop_redis()
    try:
        status = api.wait_status(
            ns, name, lambda s: condition(s, "RedisReachable")["status"] == "False"
        )
        assert condition(status, "RedisReachable")["reason"] == "RedisError"
    finally:
        cluster.start_redis()
    api.wait_status(ns, name, lambda s: condition(s, "RedisReachable")["status"] == "True")


# -- drift -------------------------------------------------------------------------


def test_deleted_or_edited_children_are_restored(api: Api, session_namespace: str) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")

    old_uid = (api.child("ScaledObject", ns, name) or {})["metadata"]["uid"]
    api.custom.delete_namespaced_custom_object("keda.sh", "v1alpha1", ns, "scaledobjects", name)
    restored = wait_for(
        lambda: (
            (c := api.child("ScaledObject", ns, name)) and c["metadata"]["uid"] != old_uid and c
        ),
        timeout=20,
    )
    assert restored["spec"]["maxReplicaCount"] == 1

    api.apps.patch_namespaced_deployment(
        name,
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "session", "image": "evil.example.com/miner:latest"}
                        ]
                    }
                }
            }
        },
    )
    wait_for(
        lambda: (
            (api.child("Deployment", ns, name) or {})["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == IMAGE
        ),
        timeout=20,
    )

    api.apps.delete_namespaced_deployment(name, ns)
    deployment = wait_for(lambda: api.child("Deployment", ns, name), timeout=20)
    assert deployment["spec"]["replicas"] == 0, "a re-created Deployment must start asleep"


# -- deletion ------------------------------------------------------------------------


def _keys_of(queue: str) -> list[str]:
    return [queue, f"{queue}:processing", f"{queue}:reply:abc"]


def _fill(rds: redis.Redis, queue: str) -> None:
    rds.lpush(queue, "pending")
    rds.lpush(f"{queue}:processing", "taken")
    rds.set(f"{queue}:reply:abc", "answer")


def test_delete_removes_children_redis_keys_and_finalizer(
    api: Api, session_namespace: str, rds: redis.Redis
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    session = api.session(ns, name)
    assert session is not None
    assert "sessions.ai-infra.dev/cleanup" in session["metadata"]["finalizers"]
    other = f"usersession:{ns}:someone-else"
    rds.lpush(other, "keep me")
    _fill(rds, status["queueName"])

    api.delete(ns, name)
    wait_for(lambda: api.session(ns, name) is None, timeout=30)
    assert rds.exists(*_keys_of(status["queueName"])) == 0
    assert rds.lrange(other, 0, -1) == ["keep me"]
    for kind in ("Deployment", "ScaledObject", "TriggerAuthentication"):
        wait_for(lambda kind=kind: api.child(kind, ns, name) is None, timeout=60)


def test_delete_while_redis_is_down_completes_after_it_returns(
    api: Api, session_namespace: str, rds: redis.Redis, cluster: LocalCluster
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    queue = status["queueName"]
    _fill(rds, queue)

    cluster.stop_redis()
    try:
        api.delete(ns, name)

        def warned() -> bool:
            events = api.core.list_namespaced_event(ns).items
            return any(
                e.reason == "RedisCleanupFailed" and e.involved_object.name == name for e in events
            )

        wait_for(warned, timeout=30)
        held = api.session(ns, name)
        assert held is not None, "deletion finished although Redis was never cleaned"
        assert held["status"]["phase"] == "Terminating"
    finally:
        cluster.start_redis()
    wait_for(lambda: api.session(ns, name) is None, timeout=60)
    assert rds.exists(*_keys_of(queue)) == 0
    # Gone by the finalizer's hand on the restarted Redis (whose counters start at zero
    # and which keeps its data over a restart: test_cluster.py), not lost with it.
    assert int((rds.info("commandstats").get("cmdstat_unlink") or {}).get("calls", 0)) >= 1


# -- validation and names -----------------------------------------------------------


def test_a_200_character_name_gets_valid_unique_child_names(
    api: Api, session_namespace: str
) -> None:
    ns = session_namespace
    stem = "a" * 190
    first, second = f"{stem}-first", f"{stem}-secnd"
    assert len(first) > 195
    for name in (first, second):
        api.create(ns, name)
    for name in (first, second):
        status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
        short = status["children"]["deployment"]
        assert short == child_name(name)
        assert len(short) <= 52
        assert api.child("Deployment", ns, short) is not None
    assert child_name(first) != child_name(second)


# -- secrets -------------------------------------------------------------------------


# The TLS and ACL secrets (username, client key): tests/integration/test_redis_tls.py.
def test_password_appears_in_no_status_event_child_or_log(
    api: Api, session_namespace: str, cluster: LocalCluster, operator_log: Collect
) -> None:
    ns, name = session_namespace, unique()
    api.create(ns, name)
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    seen = {
        "the UserSession (status, annotations)": json.dumps(api.session(ns, name)),
        "the children": json.dumps(
            [
                api.child(k, ns, name)
                for k in ("Deployment", "ScaledObject", "TriggerAuthentication")
            ]
        ),
    }
    cluster.stop_redis()  # provoke the error paths too: they are where secrets tend to leak
    try:
        status = api.wait_status(
            ns, name, lambda s: condition(s, "RedisReachable")["status"] == "False"
        )
        seen["the status during an outage"] = json.dumps(status)
        api.delete(ns, name)
        wait_for(
            lambda: any(
                e.reason == "RedisCleanupFailed" for e in api.core.list_namespaced_event(ns).items
            ),
            timeout=30,
        )
    finally:
        cluster.start_redis()
    wait_for(lambda: api.session(ns, name) is None, timeout=60)

    events = api.core.list_namespaced_event(ns)
    seen["events"] = json.dumps(api.core.api_client.sanitize_for_serialization(events))
    seen["the operator's log"] = "\n".join(operator_log.lines)
    assert "RedisCleanupFailed" in seen["events"]
    # The log was really captured, at its most verbose, error paths included.
    assert "DEBUG urllib3.connectionpool" in seen["the operator's log"]
    assert "RedisCleanupFailed" in seen["the operator's log"]
    for where, text in seen.items():
        assert cluster.redis_password not in text, f"the Redis password leaked into {where}"


# -- Argo CD -----------------------------------------------------------------------


def test_argocd_health_check_follows_live_sessions(
    api: Api, session_namespace: str, cluster: LocalCluster, rds: redis.Redis, argocd_health: Any
) -> None:
    ns, name, bad = session_namespace, unique(), unique("bad")

    def health(session: str) -> str:
        obj = api.session(ns, session)
        assert obj is not None
        return str(argocd_health(obj)[0])

    api.create(ns, name, scaling=FAST_SCALING)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert health(name) == "Healthy"

    rds.lpush(status["queueName"], "work")
    api.wait_status(ns, name, lambda s: s.get("phase") == "Running")
    assert health(name) == "Healthy"

    api.patch_spec(ns, name, {"suspend": True})
    api.wait_status(
        ns, name, lambda s: s.get("phase") == "Suspended" and s["observedGeneration"] == 2
    )
    assert health(name) == "Suspended"

    # Accepted by the CRD, refused by the Deployment's own validation.
    api.create(ns, bad, workload={"image": IMAGE, "podLabels": {"team": "not a valid value!"}})
    status = api.wait_status(ns, bad, lambda s: s.get("phase") == "Degraded")
    assert condition(status, "Ready")["reason"] == "ReconcileFailed"
    assert "spec.template.labels" in condition(status, "Ready")["message"]
    assert health(bad) == "Degraded"

    cluster.stop_redis()
    try:
        api.delete(ns, name)
        api.wait_status(ns, name, lambda s: s.get("phase") == "Terminating")
        assert health(name) == "Progressing"
    finally:
        cluster.start_redis()


def test_gitops_safe_no_spec_writes_no_tracking_leaks_idempotent_apply(
    api: Api, session_namespace: str
) -> None:
    ns, name = session_namespace, unique()
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "UserSession",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/instance": "argo-app"},
            "annotations": {"argocd.argoproj.io/tracking-id": "argo-app:sessions/UserSession:x"},
        },
        "spec": {"userId": "alice@example.com", "workload": {"image": IMAGE}},
    }

    def apply(dry_run: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = api.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            PLURAL,
            name,
            manifest,
            field_manager="argocd-controller",
            force=True,
            dry_run=dry_run,
            _content_type="application/apply-patch+yaml",
        )
        return result

    apply()
    api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping" and "queueDepth" in s)
    before = api.session(ns, name)
    assert before is not None
    # What Argo CD's server-side diff does: a dry-run apply, compared with live.
    predicted = apply(dry_run="All")
    assert predicted["spec"] == before["spec"]
    assert predicted["metadata"]["labels"] == before["metadata"]["labels"]
    assert predicted["metadata"]["generation"] == before["metadata"]["generation"] == 1
    tracking = "argocd.argoproj.io/tracking-id"
    assert (
        predicted["metadata"]["annotations"][tracking]
        == before["metadata"]["annotations"][tracking]
    )
    for entry in before["metadata"]["managedFields"]:
        if entry["manager"] != "argocd-controller":
            assert "f:spec" not in entry.get("fieldsV1", {}), f"{entry['manager']} wrote spec"
    for kind in ("Deployment", "ScaledObject", "TriggerAuthentication"):
        child = api.child(kind, ns, name)
        assert child is not None
        assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == name
        assert not any(
            k.startswith("argocd.argoproj.io/")
            for k in (child["metadata"].get("annotations") or {})
        )


# -- the examples ----------------------------------------------------------------


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example_spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())["spec"]
    return spec


def test_the_minimal_example_becomes_ready_as_written(api: Api, session_namespace: str) -> None:
    # Run a second time as the chart's ServiceAccount (hack/test.sh): the chart's
    # RBAC is enough for it.
    ns, name = session_namespace, unique()
    api.create(ns, name, **_example_spec("usersession-minimal.yaml"))
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert condition(status, "Ready")["status"] == "True"


def test_the_full_examples_workload_becomes_ready(api: Api, session_namespace: str) -> None:
    # Its pod fields as written (restricted security contexts, affinity, pull
    # secrets, env, resources...); its Redis is this suite's own, and its storage
    # is left out: the local stack has no volume provisioner.
    spec = _example_spec("usersession-full.yaml")
    spec.pop("storage")
    spec["redis"] = {"passwordSecretRef": {"name": "redis-auth", "key": "password"}}
    spec["queue"].pop("name")  # a queue name of its own would be shared by both runs
    ns, name = session_namespace, unique()
    api.create(ns, name, **spec)
    status = api.wait_status(ns, name, lambda s: s.get("phase") == "Sleeping")
    assert condition(status, "Ready")["status"] == "True", status
    pod = api.child("Deployment", ns, name)
    assert pod is not None
    template = pod["spec"]["template"]["spec"]
    assert template["securityContext"]["runAsUser"] == 65532
    assert template["imagePullSecrets"] == [{"name": "registry-credentials"}]
