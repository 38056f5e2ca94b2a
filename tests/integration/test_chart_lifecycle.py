"""The chart's day two against the real API server: helm install, an upgrade that
changes the CRD, and helm uninstall, with the helm binary users run.

The suite's cluster already has the CRD (the local stack applied it), as a
cluster upgraded from a chart that installed it from crds/ would: the test
adopts it into the release the way README.md tells users to.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.chart import CHART, helm, helm_on
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_localstack.manifests import install_crds

CRD = "usersessions.sessions.ai-infra.dev"
CRD_FILE = "files/sessions.ai-infra.dev_usersessions.yaml"
MARK = "Upgraded by test_chart_lifecycle."


def _crd(cluster: LocalCluster) -> dict[str, Any]:
    crd: dict[str, Any] = cluster.api(
        "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}"
    )
    return crd


def _description(crd: dict[str, Any]) -> str:
    return str(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].get("description", ""))


def _released(cluster: LocalCluster, release: str, namespace: str) -> list[str]:
    """Every object still labelled as the release's, by kind/name."""
    selector = f"labelSelector=app.kubernetes.io/instance%3D{release}"
    paths = {
        "Deployment": f"/apis/apps/v1/namespaces/{namespace}/deployments",
        "Service": f"/api/v1/namespaces/{namespace}/services",
        "ServiceAccount": f"/api/v1/namespaces/{namespace}/serviceaccounts",
        "Role": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        "RoleBinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        "Secret": f"/api/v1/namespaces/{namespace}/secrets",
        "ConfigMap": f"/api/v1/namespaces/{namespace}/configmaps",
        "PodDisruptionBudget": f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
        "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    }
    return [
        f"{kind}/{item['metadata']['name']}"
        for kind, path in paths.items()
        for item in cluster.api("GET", f"{path}?{selector}")["items"]
    ]


@pytest.fixture
def upgraded_chart(tmp_path: Path) -> Path:
    """A copy of the chart whose CRD differs in one description: the next version."""
    copy = tmp_path / "usersession-operator"
    subprocess.run(["cp", "-r", str(CHART), str(copy)], check=True)
    crd = yaml.safe_load((copy / CRD_FILE).read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] = MARK
    (copy / CRD_FILE).write_text(yaml.safe_dump(crd))
    return copy


@pytest.fixture
def release(cluster: LocalCluster) -> Iterator[tuple[str, str]]:
    name, namespace = "lc", f"lc-{uuid.uuid4().hex[:8]}"
    try:
        yield name, namespace
    finally:
        subprocess.run(
            [helm(), "--kubeconfig", str(cluster.kubeconfig), "uninstall", name, "-n", namespace],
            capture_output=True,
            check=False,
        )
        with contextlib.suppress(OSError):
            cluster.api("DELETE", f"/api/v1/namespaces/{namespace}")
        # Back to the CRD the rest of the suite was started with.
        install_crds(cluster, [CHART.parents[1] / "crds" / CRD_FILE.rsplit("/", 1)[1]])


def test_install_upgrade_uninstall(
    cluster: LocalCluster, release: tuple[str, str], upgraded_chart: Path
) -> None:
    name, namespace = release
    # Adopt the CRD that is already there (README.md, "Upgrade").
    cluster.api(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}",
        {
            "metadata": {
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": name,
                    "meta.helm.sh/release-namespace": namespace,
                },
            }
        },
        content_type="application/merge-patch+json",
    )
    said = helm_on(cluster, "install", name, str(CHART), "-n", namespace, "--create-namespace")
    # NOTES.txt: what was installed and how to check it.
    assert f"is installed as release {name} in {namespace}" in said, said
    assert f"kubectl -n {namespace} rollout status deployment/lc-usersession-operator" in said
    assert "{{" not in said and "<no value>" not in said, said
    assert 'WARNING: redis.address "redis:6379" is a short name' in said  # the default
    installed = _released(cluster, name, namespace)
    assert "Deployment/lc-usersession-operator" in installed
    assert "PodDisruptionBudget/lc-usersession-operator" in installed
    assert _crd(cluster)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    # The upgrade changes the CRD in the cluster: no kubectl apply beside it.
    assert _description(_crd(cluster)) != MARK
    # With the Redis Secret made by the chart (more to remove on uninstall) and a
    # full Redis name: the notes say so, and warn no more.
    said = helm_on(
        cluster,
        "upgrade",
        name,
        str(upgraded_chart),
        "-n",
        namespace,
        "--reuse-values",
        "--set",
        "redis.address=redis.redis.svc.cluster.local:6379,redis.createSecret=true",
        "--set",
        "redis.password=not-a-real-one",
    )
    assert _description(_crd(cluster)) == MARK
    assert "WARNING" not in said, said
    assert f'Secret "redis-auth" (key password), created by this release in {namespace}' in said
    assert "Secret/redis-auth" in _released(cluster, name, namespace)
    wait_for(
        lambda: cluster.api_ok("/apis/sessions.ai-infra.dev/v1alpha1/usersessions?limit=1"),
        timeout=30,
    )

    # Uninstall: nothing of the release is left but the CRD, kept on purpose.
    said = helm_on(cluster, "uninstall", name, "-n", namespace)
    assert "kept due to the resource policy" in said, said
    assert _released(cluster, name, namespace) == []
    assert _description(_crd(cluster)) == MARK
