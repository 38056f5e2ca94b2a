"""Rendering the Helm chart and running the operator as its ServiceAccount (test helpers)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from support.tools import go_tool
from usersession_localstack.cluster import LocalCluster, assets
from usersession_localstack.loopback import wait_for

REPO = Path(__file__).resolve().parents[2]  # tests/support/chart.py -> repo
CHART = REPO / "charts" / "usersession-operator"
RELEASE, RELEASE_NAMESPACE = "uso", "usersession-system"


def helm() -> str:
    return go_tool("helm")


def kube_version() -> str:
    """helm assumes an old cluster unless told; tell it the one the tests run."""
    return assets.versions()["K8S_VERSION"]


def kubectl() -> str:
    return str(assets.control_plane_dir() / "kubectl")


def render(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [
            helm(),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            RELEASE_NAMESPACE,
            "--kube-version",
            kube_version(),
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def helm_on(cluster: LocalCluster, *args: str) -> str:
    """helm against the cluster; its stdout, or a failure that carries what helm said."""
    done = subprocess.run(
        [helm(), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def notes(cluster: LocalCluster, *flags: str) -> str:
    """NOTES.txt as `helm install` prints it, for release "notes" in namespace "notes".
    A client-side dry run installs nothing, but refuses objects that exist and are not
    its own: hence a name no other test uses, and not the CRD the cluster came with."""
    said = helm_on(
        cluster,
        "install",
        "notes",
        str(CHART),
        "--namespace",
        "notes",
        "--dry-run=client",
        "--set",
        "crds.enabled=false",
        *flags,
    )
    return said.split("NOTES:\n", 1)[1]


def apply(cluster: LocalCluster, docs: list[dict[str, Any]], *flags: str) -> str:
    result = subprocess.run(
        [
            kubectl(),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "apply",
            "--server-side",
            "--field-manager=helm-test",
            "-f",
            "-",
            *flags,
        ],
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl apply failed: {result.stderr}")
    return result.stdout


def service_account_kubeconfig(
    cluster: LocalCluster,
    path: Path,
    *values: str,
    account: str = f"{RELEASE}-usersession-operator",
) -> Path:
    """Install the chart's ServiceAccounts and RBAC; a kubeconfig with `account`'s token."""
    rbac_kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    docs = [d for d in render(*values) if d["kind"] in rbac_kinds]
    namespaces = {d["metadata"].get("namespace") for d in docs} - {None}
    for ns in namespaces:
        ensure_namespace(cluster, ns)
    apply(cluster, docs)
    [sa] = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == account]
    token = cluster.api(
        "POST",
        f"/api/v1/namespaces/{RELEASE_NAMESPACE}/serviceaccounts/{sa['metadata']['name']}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200},
        },
    )["status"]["token"]
    admin = json.loads(cluster.kubeconfig.read_text())
    ca = admin["clusters"][0]["cluster"]["certificate-authority-data"]
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {"server": cluster.server, "certificate-authority-data": ca},
                    }
                ],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [
                    {"name": "operator", "context": {"cluster": "local", "user": "operator"}}
                ],
                "current-context": "operator",
            }
        )
    )
    path.chmod(0o600)
    return path


def ensure_namespace(cluster: LocalCluster, namespace: str) -> None:
    try:
        cluster.api("GET", f"/api/v1/namespaces/{namespace}")
    except OSError:
        cluster.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})


# The kinds of the Prometheus Operator the chart can render, and their CRD files.
MONITORING_CRDS = {
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
}


def install_monitoring_crds(cluster: LocalCluster) -> str | None:
    """Install the Prometheus Operator's CRDs at the pinned version; None, or why not.

    They come from its Go module (hack/prometheus-operator-crds.sh), so a machine
    without Go or the module proxy cannot have them: the caller skips with the reason.
    """
    script = REPO / "hack" / "prometheus-operator-crds.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"the Prometheus Operator's CRDs are unavailable ({script.name}): {result.stderr}"
    directory = Path(result.stdout.strip().splitlines()[-1])
    docs = [yaml.safe_load((directory / name).read_text()) for name in MONITORING_CRDS.values()]
    apply(cluster, docs)
    wait_for(lambda: {"prometheusrules", "servicemonitors"} <= _served_resources(cluster), 30)
    return None


def _served_resources(cluster: LocalCluster) -> set[str]:
    try:
        found = cluster.api("GET", "/apis/monitoring.coreos.com/v1")
    except OSError:
        return set()
    return {r["name"] for r in found["resources"]}
