"""The release path for the chart, as docs/operations.md ("Releasing") writes it,
against a real OCI registry on loopback: helm package, helm push, then pull and
install from oci://. The image's half (podman push) is in tests/image.

What cannot run here: the tag workflow itself (GitHub's runners, ghcr.io) and
cosign's keyless signing (Sigstore's services). The workflow is linted with
actionlint (tests/unit/test_scripts.py); the digest its signing step reads from
`helm push` is checked below.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support.chart import CHART, RELEASE, RELEASE_NAMESPACE, helm, kube_version
from support.registry import oci_registry

CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with oci_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


def _helm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Its own config and cache: the registry login file and pulled charts stay here.
    env = os.environ | {"HELM_CONFIG_HOME": str(home / "config"), "HELM_CACHE_HOME": str(home)}
    result = subprocess.run([helm(), *args], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result


def test_the_chart_is_pushed_to_an_oci_registry_and_installs_from_it(
    registry: str, tmp_path: Path
) -> None:
    version = CHART_YAML["version"]
    _helm(tmp_path, "package", str(CHART), "--destination", str(tmp_path / "dist"))
    package = tmp_path / "dist" / f"usersession-operator-{version}.tgz"

    pushed = _helm(tmp_path, "push", str(package), f"oci://{registry}/charts", "--plain-http")
    # The workflow signs what this line names (sed -n 's/^Digest: //p').
    digest = re.search(r"^Digest: (sha256:[0-9a-f]{64})$", pushed.stdout + pushed.stderr, re.M)
    assert digest, pushed.stdout + pushed.stderr

    reference = f"oci://{registry}/charts/usersession-operator"
    pulled, pinned = tmp_path / "pulled", tmp_path / "pinned"
    pulled.mkdir(), pinned.mkdir()
    _helm(tmp_path, "pull", reference, "--version", version, "--plain-http", "-d", str(pulled))
    assert (pulled / package.name).read_bytes() == package.read_bytes()
    # By digest too, as a signature would pin it.
    by_digest = f"{reference}@{digest.group(1)}"
    _helm(tmp_path, "pull", by_digest, "--plain-http", "-d", str(pinned))
    [by_digest_package] = pinned.iterdir()  # named after the digest, not the version
    assert by_digest_package.read_bytes() == package.read_bytes()

    rendered = _helm(
        tmp_path,
        "template",
        RELEASE,
        reference,
        "--version",
        version,
        "--plain-http",
        "--namespace",
        RELEASE_NAMESPACE,
        "--kube-version",
        kube_version(),
        "--set",
        f"image.repository={registry}/usersession-operator",
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert "CustomResourceDefinition" in {d["kind"] for d in docs}
    [operator] = [d for d in docs if d["kind"] == "Deployment"]
    [container] = operator["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{registry}/usersession-operator:{CHART_YAML['appVersion']}"
