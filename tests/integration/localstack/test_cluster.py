"""Proof that the local control plane is a real one: scheduling, kwok, GC, CRDs, kopf, Redis."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import kopf.testing
import pytest
import redis
from kubernetes import client
from kubernetes.client.rest import ApiException

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_localstack.manifests import install_crds

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.proof.example.com"},
    "spec": {
        "group": "proof.example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Seen", "type": "string", "jsonPath": ".status.seen"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            },
                            "status": {
                                "type": "object",
                                "properties": {"seen": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module")
def widgets(
    cluster: LocalCluster, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> client.CustomObjectsApi:
    path = tmp_path_factory.mktemp("crd") / "widget.yaml"
    path.write_text(json.dumps(WIDGET_CRD))
    install_crds(cluster.admin, [path])
    return client.CustomObjectsApi(api_client)


def test_api_server_reports_the_pinned_version(api_client: client.ApiClient) -> None:
    from usersession_localstack import assets

    info = client.VersionApi(api_client).get_code()
    assert info.git_version == assets.versions()["K8S_VERSION"]


def test_deployment_pod_runs_on_a_kwok_node(api_client: client.ApiClient, namespace: str) -> None:
    labels = {"app": "proof"}
    client.AppsV1Api(api_client).create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "proof"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "example.invalid/none:1"}]},
                },
            },
        },
    )
    core = client.CoreV1Api(api_client)

    def running_pod() -> Any:
        pods = core.list_namespaced_pod(namespace, label_selector="app=proof").items
        return next((p for p in pods if p.status.phase == "Running"), None)

    pod = wait_for(running_pod, timeout=60)
    assert pod.spec.node_name.startswith("kwok-node-")
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def test_garbage_collector_deletes_dependents(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", namespace)

    def dependent_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(dependent_gone, timeout=60)


def _widget(name: str, size: int, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "proof.example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
        **extra,
    }


def test_crd_schema_status_subresource_and_printer_columns(
    widgets: client.CustomObjectsApi, cluster: LocalCluster, namespace: str
) -> None:
    group, version, plural = "proof.example.com", "v1", "widgets"
    with pytest.raises(ApiException) as rejected:
        widgets.create_namespaced_custom_object(
            group, version, namespace, plural, _widget("bad", 0)
        )
    assert rejected.value.status == 422
    assert "spec.size" in rejected.value.body

    widgets.create_namespaced_custom_object(
        group, version, namespace, plural, _widget("good", 3, status={"seen": "ignored"})
    )
    good = widgets.get_namespaced_custom_object(
        "proof.example.com", "v1", namespace, "widgets", "good"
    )
    assert "status" not in good, "status must only be writable through the status subresource"
    widgets.patch_namespaced_custom_object_status(
        "proof.example.com", "v1", namespace, "widgets", "good", {"status": {"seen": "yes"}}
    )

    table = _table(cluster, f"/apis/proof.example.com/v1/namespaces/{namespace}/widgets")
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:3] == ["Name", "Size", "Seen"]
    assert table["rows"][0]["cells"][:3] == ["good", 3, "yes"]


def _table(cluster: LocalCluster, path: str) -> Any:
    import urllib.request

    request = urllib.request.Request(
        cluster.server + path,
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
    )
    with urllib.request.urlopen(request, context=cluster.ssl_context(), timeout=10) as response:
        return json.loads(response.read())


def test_kopf_operator_reacts_to_an_object(
    widgets: client.CustomObjectsApi, namespace: str, tmp_path: Path
) -> None:
    operator = tmp_path / "widget_operator.py"
    operator.write_text(
        textwrap.dedent("""
        import kopf

        @kopf.on.startup()
        def configure(settings, **_):
            settings.persistence.finalizer = "proof.example.com/finalizer"
            prefix = "proof.example.com"
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
            settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=prefix)

        @kopf.on.create("proof.example.com", "v1", "widgets")
        def created(patch, spec, **_):
            patch.status["seen"] = f"size={spec['size']}"
    """)
    )
    name = f"w-{uuid.uuid4().hex[:6]}"
    args = ["run", "--standalone", "--namespace", namespace, str(operator)]
    with kopf.testing.KopfRunner(args, timeout=60) as runner:
        widgets.create_namespaced_custom_object(
            "proof.example.com",
            "v1",
            namespace,
            "widgets",
            {
                "apiVersion": "proof.example.com/v1",
                "kind": "Widget",
                "metadata": {"name": name},
                "spec": {"size": 7},
            },
        )

        def seen() -> Any:
            obj = widgets.get_namespaced_custom_object(
                "proof.example.com", "v1", namespace, "widgets", name
            )
            return obj.get("status", {}).get("seen")

        assert wait_for(seen, timeout=30) == "size=7"
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None


def test_keda_is_the_real_pinned_release_and_serves_every_crd(
    cluster: LocalCluster, api_client: client.ApiClient
) -> None:
    from usersession_localstack import assets

    log = (cluster.workdir / "logs" / "keda-operator.log").read_text()
    assert f"KEDA Version: {assets.versions()['KEDA_VERSION']}" in log
    crds = client.ApiextensionsV1Api(api_client).list_custom_resource_definition().items
    keda = {c.metadata.name for c in crds if c.spec.group in ("keda.sh", "eventing.keda.sh")}
    assert len(keda) == 6, keda  # KEDA watches all of its kinds


def test_install_crds_returns_only_once_the_new_kind_can_be_listed(
    cluster: LocalCluster, api_client: client.ApiClient, tmp_path: Path
) -> None:
    # A client started right after install (the operator, KEDA) must not meet
    # "storage is (re)initializing".
    crd = json.loads(json.dumps(WIDGET_CRD).replace("widget", "gadget").replace("Widget", "Gadget"))
    path = tmp_path / "gadget.yaml"
    path.write_text(json.dumps(crd))
    install_crds(cluster.admin, [path])
    listed = client.CustomObjectsApi(api_client).list_cluster_custom_object(
        "proof.example.com", "v1", "gadgets"
    )
    assert listed["items"] == []


def test_redis_requires_the_password(cluster: LocalCluster) -> None:
    anonymous = redis.Redis(host=cluster.redis_host, port=cluster.redis_port)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host=cluster.redis_host, port=cluster.redis_port, password="wrong")
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    good = redis.Redis(
        host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
    )
    assert good.ping() is True


def test_redis_keeps_every_acknowledged_write_over_a_sigkill(cluster: LocalCluster) -> None:
    # The chaos run and the deletion tests rely on it: a restart is not data loss.
    conn = redis.Redis(
        host=cluster.redis_host, port=cluster.redis_port, password=cluster.redis_password
    )
    key = f"usersession:persist:{uuid.uuid4().hex[:8]}"
    conn.lpush(key, *[str(i) for i in range(100)])
    cluster.kill_redis()
    cluster.start_redis()
    try:
        assert conn.llen(key) == 100
    finally:
        conn.delete(key)
        conn.close()


def test_stop_leaves_no_process_or_directory_behind() -> None:
    with LocalCluster() as local:
        pids = [c.pid for c in local.components]
        workdir = local.workdir
        assert workdir.exists()
    assert not workdir.exists()
    # redis, etcd, apiserver, controller-manager, scheduler, kwok, keda-operator
    assert len(pids) == 7
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived stop()"
