"""Installing CRDs into a cluster the harness started (ours and KEDA's)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from usersession_localstack import assets
from usersession_localstack.adminapi import AdminApi

REPO_CRDS = assets.REPO_ROOT / "crds"
FIELD_MANAGER = "usersession-localstack"


def crd_files() -> list[Path]:
    """This project's CRDs plus all of KEDA's."""
    return sorted(REPO_CRDS.glob("*.yaml")) + assets.keda_crds()


def install_crds(
    admin: AdminApi, files: Iterable[Path] | None = None, timeout: float = 60
) -> list[str]:
    """Apply the CRDs and return once every one of them is served.

    Established is not enough: for a moment after it, a list of the new kind
    still fails with "storage is (re)initializing", which is what a client
    started right away (the operator, KEDA) would log as an error.
    """
    crds = []
    for path in files if files is not None else crd_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                apply_crd(admin, doc)
                crds.append(doc)
    deadline = time.monotonic() + timeout
    for crd in crds:
        while not (_established(admin, crd["metadata"]["name"]) and _served(admin, crd)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {crd['metadata']['name']} not served after {timeout}s")
            time.sleep(0.1)
    return [crd["metadata"]["name"] for crd in crds]


def apply_crd(admin: AdminApi, crd: dict[str, Any]) -> None:
    query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
    admin.api(
        "PATCH",
        f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}?{query}",
        crd,
        content_type="application/apply-patch+yaml",
    )


def _established(admin: AdminApi, name: str) -> bool:
    crd = admin.api("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    # A CRD just created has `status: {conditions: null}` until the API server gets to it.
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _served(admin: AdminApi, crd: dict[str, Any]) -> bool:
    spec = crd["spec"]
    version = next(v["name"] for v in spec["versions"] if v.get("served", True))
    return admin.api_ok(f"/apis/{spec['group']}/{version}/{spec['names']['plural']}?limit=1")
