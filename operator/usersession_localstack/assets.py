"""Where the control-plane binaries, KEDA and its CRDs come from.

Versions are pinned once, in hack/versions.env. Control-plane binaries come from
KUBEBUILDER_ASSETS when it holds them (envtest's convention), KEDA from
KEDA_ASSETS; otherwise hack/build-control-plane.sh and hack/build-keda.sh build
them from the Go module proxy and cache them by version outside the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK = REPO_ROOT / "hack"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
)


class AssetsUnavailable(RuntimeError):
    pass


@cache
def versions() -> dict[str, str]:
    path = HACK / "versions.env"
    if not path.exists():
        raise AssetsUnavailable(f"{path} not found: run from a source checkout of the project")
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


@cache
def control_plane_dir() -> Path:
    """Directory holding the binaries (building them on first use, with progress on stderr)."""
    given = os.environ.get("KUBEBUILDER_ASSETS")
    if given and all((Path(given) / b).exists() for b in BINARIES):
        return Path(given)
    return _built("build-control-plane.sh")


def _built(name: str) -> Path:
    """Run a hack/ build script (a no-op when its cache is warm) and return the path it prints."""
    script = HACK / name
    # stderr passes through: the first build takes many minutes and says so as it goes.
    result = subprocess.run(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False
    )
    if result.returncode != 0:
        raise AssetsUnavailable(f"{script} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def kwok_stages(assets: Path) -> list[Path]:
    """kwok's stage configs: nodes become Ready, pods Running (and finish and go when deleted)."""
    stages = assets / "kwok-stages"
    wanted = [
        "node/fast/node-initialize.yaml",
        "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
        "pod/fast/pod-ready.yaml",
        "pod/fast/pod-complete.yaml",
        "pod/fast/pod-delete.yaml",
    ]
    missing = [w for w in wanted if not (stages / w).exists()]
    if missing:
        raise AssetsUnavailable(f"kwok stage configs missing under {stages}: {missing}")
    return [stages / w for w in wanted]


@cache
def keda_dir() -> Path:
    """The real KEDA operator and all of KEDA's CRDs (hack/build-keda.sh; KEDA_ASSETS if given)."""
    return _built("build-keda.sh")


def keda_crds() -> list[Path]:
    """All six of KEDA's CRDs, from the github.com/kedacore/keda/v2 module at the pinned release.

    KEDA watches every one of its kinds; with only ScaledObject and
    TriggerAuthentication installed it logs errors every few seconds.
    """
    files = sorted((keda_dir() / "crds").glob("*.yaml"))
    if not files:
        raise AssetsUnavailable(f"no KEDA CRDs under {keda_dir() / 'crds'}")
    return files
