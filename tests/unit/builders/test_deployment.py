from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from usersession_operator.builders import build_children
from usersession_operator.builders.deployment import (
    build_deployment,
    initial_deployment,
    replicas_seed,
)
from usersession_operator.session.model import RESERVED_ENV_NAMES, Session
from usersession_operator.session.names import child_name
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings

MakeSession = Callable[..., Session]


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(manifest)["env"]}


def test_no_replicas_so_keda_owns_them(make_session: MakeSession) -> None:
    manifest = build_deployment(make_session())
    assert "replicas" not in manifest["spec"]
    assert '"replicas"' not in json.dumps(manifest)


def test_shape(make_session: MakeSession) -> None:
    manifest = build_deployment(make_session())
    assert (manifest["apiVersion"], manifest["kind"]) == ("apps/v1", "Deployment")
    assert manifest["metadata"]["name"] == "alice"
    assert manifest["metadata"]["namespace"] == "team-a"
    spec = manifest["spec"]
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["revisionHistoryLimit"] == 2
    assert spec["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "usersession",
        "app.kubernetes.io/instance": "alice",
    }
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pod_labels["app.kubernetes.io/component"] == "session-worker"
    container = _container(manifest)
    assert container["name"] == "session"
    assert container["image"] == "registry.example.com/session-worker:0.1.0"
    # Unset workload fields stay out, leaving them to Kubernetes' defaults.
    for key in ("imagePullPolicy", "command", "args", "resources"):
        assert key not in container
    for key in (
        "nodeSelector",
        "tolerations",
        "serviceAccountName",
        "affinity",
        "imagePullSecrets",
        "priorityClassName",
    ):
        assert key not in spec["template"]["spec"]
    assert "annotations" not in spec["template"]["metadata"]


def test_grace_period_lets_the_worker_finish_its_message(make_session: MakeSession) -> None:
    default = build_deployment(make_session())["spec"]["template"]["spec"]
    assert default["terminationGracePeriodSeconds"] == 30  # Kubernetes' own default
    long = make_session(workload={"image": "i", "terminationGracePeriodSeconds": 900})
    assert (
        build_deployment(long)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 900
    )


def test_owner_reference_makes_the_session_the_controller(make_session: MakeSession) -> None:
    session = make_session()
    (owner,) = build_deployment(session)["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "sessions.ai-infra.dev/v1alpha1",
        "kind": "UserSession",
        "name": "alice",
        "uid": session.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_operator_env_then_user_env(make_session: MakeSession) -> None:
    session = make_session(
        workload={
            "image": "img",
            "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
        }
    )
    env = _container(build_deployment(session))["env"]
    names = [e["name"] for e in env]
    # Plaintext, default user: no REDIS_USERNAME or REDIS_TLS* (see test_redisauth.py).
    assert set(names[:-2]) == RESERVED_ENV_NAMES - {"REDIS_USERNAME"} - {
        n for n in RESERVED_ENV_NAMES if n.startswith("REDIS_TLS")
    }
    assert names[-2:] == ["B", "A"]
    by_name = {e["name"]: e.get("value") for e in env}
    assert by_name["SESSION_NAME"] == "alice"
    assert by_name["SESSION_NAMESPACE"] == "team-a"
    assert by_name["USER_ID"] == "alice@example.com"
    assert by_name["SESSION_QUEUE"] == "usersession:team-a:alice"
    assert by_name["REDIS_ADDRESS"] == "redis.platform.svc:6380"
    assert by_name["REDIS_HOST"] == "redis.platform.svc"
    assert by_name["REDIS_PORT"] == "6380"
    assert by_name["REDIS_DB"] == "2"
    assert all(isinstance(e.get("value", ""), str) for e in env)


def test_password_only_by_secret_reference(make_session: MakeSession) -> None:
    env = _env(build_deployment(make_session()))
    assert env["REDIS_PASSWORD"] == {
        "name": "REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "platform-redis", "key": "redis-password"}},
    }


def test_no_manifest_ever_holds_the_password(
    make_body: Callable[..., dict[str, Any]], settings: OperatorSettings
) -> None:
    # A password that once sat in the object (here in kubectl's last-applied
    # annotation) must not reach any child.
    body = make_body(redis={"passwordSecretRef": {"name": "alice-redis", "key": "pw"}})
    body["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {"spec": {"redis": {"password": "S3cr3t-value"}}}
        )
    }
    session = session_from_body(body, settings)
    manifests = [*build_children(session), replicas_seed(session), initial_deployment(session)]
    dumped = json.dumps(manifests)
    assert "S3cr3t-value" not in dumped
    # The only "password" left is the name of KEDA's parameter.
    assert dumped.count('"password"') == 1
    assert '"parameter": "password"' in dumped
    for manifest in manifests:
        if manifest["kind"] == "Deployment" and "template" in manifest["spec"]:
            secret_env = [e for e in _container(manifest)["env"] if "PASSWORD" in e["name"]]
            assert secret_env and all("value" not in e for e in secret_env)


def test_full_workload_is_passed_through(make_session: MakeSession) -> None:
    workload = {
        "image": "img:1",
        "imagePullPolicy": "Always",
        "command": ["python"],
        "args": ["-m", "worker"],
        "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
        "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
        "nodeSelector": {"pool": "sessions"},
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": "worker",
        "podLabels": {"team": "research"},
        "podAnnotations": {"example.com/note": "hi"},
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "imagePullSecrets": [{"name": "registry"}],
        "priorityClassName": "sessions",
    }
    manifest = build_deployment(make_session(workload=workload))
    container = _container(manifest)
    pod = manifest["spec"]["template"]
    assert container["imagePullPolicy"] == "Always"
    assert (container["command"], container["args"]) == (["python"], ["-m", "worker"])
    assert container["env"][-1] == workload["env"][0]
    assert container["resources"] == workload["resources"]
    assert pod["spec"]["nodeSelector"] == {"pool": "sessions"}
    assert pod["spec"]["tolerations"] == workload["tolerations"]
    assert pod["spec"]["serviceAccountName"] == "worker"
    assert pod["metadata"]["labels"]["team"] == "research"
    assert pod["metadata"]["annotations"] == {"example.com/note": "hi"}
    assert pod["spec"]["affinity"] == workload["affinity"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    assert pod["spec"]["priorityClassName"] == "sessions"


def test_operator_pod_labels_cannot_be_overridden(
    make_body: Callable[..., dict[str, Any]], settings: OperatorSettings
) -> None:
    # The CRD refuses this; the builder still keeps the selector intact if it slips through.
    body = make_body(workload={"image": "i", "podLabels": {"app.kubernetes.io/instance": "x"}})
    pod_labels = build_deployment(session_from_body(body, settings))["spec"]["template"][
        "metadata"
    ]["labels"]
    assert pod_labels["app.kubernetes.io/instance"] == "alice"


def test_parent_metadata_is_not_copied(
    make_body: Callable[..., dict[str, Any]], settings: OperatorSettings
) -> None:
    body = make_body()
    body["metadata"]["labels"] = {
        "app.kubernetes.io/instance": "argocd-app",
        "team": "research",
    }
    body["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": "app:sessions.ai-infra.dev/UserSession:team-a/alice",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    for manifest in build_children(session_from_body(body, settings)):
        dumped = json.dumps(manifest)
        assert "argocd" not in dumped
        assert "last-applied-configuration" not in dumped
        assert "research" not in dumped
        assert manifest["metadata"]["labels"]["app.kubernetes.io/instance"] == "alice"


def test_long_session_name_uses_the_short_child_name(make_session: MakeSession) -> None:
    session = make_session()
    long_session = replace(session, name="a" * 253)
    manifest = build_deployment(long_session)
    assert manifest["metadata"]["name"] == child_name("a" * 253)
    assert len(manifest["metadata"]["name"]) <= 52
    # The env and owner reference keep the real name.
    assert _env(manifest)["SESSION_NAME"]["value"] == "a" * 253
    assert manifest["metadata"]["ownerReferences"][0]["name"] == "a" * 253


def test_manifest_does_not_alias_the_session(make_session: MakeSession) -> None:
    session = make_session(workload={"image": "i", "env": [{"name": "A", "value": "1"}]})
    first = build_deployment(session)
    _container(first)["env"][-1]["value"] = "mutated"
    first["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    assert build_deployment(session) != first
    assert session.workload.env == ({"name": "A", "value": "1"},)


def test_replicas_seed_is_minimal(make_session: MakeSession) -> None:
    assert replicas_seed(make_session()) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "alice", "namespace": "team-a"},
        "spec": {"replicas": 0},
    }


def test_initial_deployment_starts_at_zero(make_session: MakeSession) -> None:
    session = make_session()
    initial = initial_deployment(session)
    assert initial["spec"]["replicas"] == 0
    del initial["spec"]["replicas"]
    assert initial == build_deployment(session)
