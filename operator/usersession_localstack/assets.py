"""Where the control-plane binaries and KEDA's CRDs come from.

Versions are pinned once, in hack/versions.env. Binaries come from
KUBEBUILDER_ASSETS when it holds them (envtest's convention), otherwise from
hack/build-control-plane.sh, which builds them from the Go module proxy and
caches them by version outside the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
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
    script = HACK / "build-control-plane.sh"
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
def keda_crds() -> list[Path]:
    """KEDA's own CRD manifests for ScaledObject and TriggerAuthentication.

    Taken from the github.com/kedacore/keda/v2 module at the pinned release, so
    the API server validates our children against KEDA's real schema.
    """
    version = versions()["KEDA_VERSION"]
    with tempfile.TemporaryDirectory() as outside_any_module:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"github.com/kedacore/keda/v2@{version}"],
            cwd=outside_any_module,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )
    if result.returncode != 0:
        raise AssetsUnavailable(
            f"go mod download of KEDA {version} failed: {result.stderr or result.stdout}"
        )
    bases = Path(json.loads(result.stdout)["Dir"]) / "config" / "crd" / "bases"
    files = [bases / "keda.sh_scaledobjects.yaml", bases / "keda.sh_triggerauthentications.yaml"]
    for f in files:
        if not f.exists():
            raise AssetsUnavailable(f"{f} not in the KEDA {version} module")
    return files
