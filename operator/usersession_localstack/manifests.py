"""Installing CRDs into a cluster the harness started (ours and KEDA's)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from . import assets
from .cluster import LocalCluster

REPO_CRDS = assets.REPO_ROOT / "crds"
FIELD_MANAGER = "usersession-localcluster"


def crd_files() -> list[Path]:
    """This project's CRDs plus KEDA's ScaledObject and TriggerAuthentication."""
    return sorted(REPO_CRDS.glob("*.yaml")) + assets.keda_crds()


def install_crds(
    cluster: LocalCluster, files: Iterable[Path] | None = None, timeout: float = 60
) -> list[str]:
    names = []
    for path in files if files is not None else crd_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                apply_crd(cluster, doc)
                names.append(doc["metadata"]["name"])
    deadline = time.monotonic() + timeout
    for name in names:
        while not _established(cluster, name):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout}s")
            time.sleep(0.1)
    return names


def apply_crd(cluster: LocalCluster, crd: dict[str, Any]) -> None:
    query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
    cluster.api(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}?{query}",
        crd,
        content_type="application/apply-patch+yaml",
    )


def _established(cluster: LocalCluster, name: str) -> bool:
    crd = cluster.api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in crd.get("status", {}).get("conditions", [])
    )
