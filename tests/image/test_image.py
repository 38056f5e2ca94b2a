"""The container image, built from the real Dockerfile and run with podman.

Everything goes through hack/image.sh, the same commands a person runs, so
the test cannot drift from the documented way to build and run the image.
The operator-in-a-container check starts its own local control plane (a few
seconds warm) instead of borrowing tests/integration's session fixture: the
containerised operator is a separate process that only gets a kubeconfig file,
and keeping this tier out of tests/integration keeps image builds out of the
default integration run.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "image.sh"
IMAGE = "localhost/usersession-operator:dev"

pytestmark = [pytest.mark.image, pytest.mark.timeout(1800)]


def script(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"hack/image.sh {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def podman_run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`podman run` with the hardening the Helm chart uses: read-only root, /tmp only."""
    return script(
        "podman",
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs",
        "/tmp:rw,size=16m,mode=1777",
        "--cap-drop",
        "all",
        *args,
        check=check,
    )


@pytest.fixture(scope="module")
def built() -> str:
    result = script("build")
    # Shown with -s (or on failure): the numbers the closing note asks for.
    print(result.stdout)
    print(result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def inspect(built: str) -> dict[str, Any]:
    out = script("podman", "image", "inspect", IMAGE).stdout
    data: list[dict[str, Any]] = json.loads(out)
    return data[0]


def test_dockerfile_is_hadolint_clean() -> None:
    result = script("lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_builds_and_reports_size_and_time(built: str) -> None:
    size = re.search(r"^image size: (\d+) MB", built, re.M)
    assert size, built
    assert re.search(r"^total build time: \d+ s$", built, re.M), built
    # The slim base plus the venv; a jump means a cache or toolchain got in.
    assert int(size.group(1)) < 350, built


def test_image_metadata(inspect: dict[str, Any]) -> None:
    config = inspect["Config"]
    assert config["Entrypoint"] == ["usersession-operator"]
    assert config["Cmd"] == ["run"]
    labels = config["Labels"]
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/usersession-base:")
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert not any(key.startswith("PIP_") for key in env), env


def test_runs_as_numeric_non_root_user(inspect: dict[str, Any]) -> None:
    assert inspect["Config"]["User"] == "65532:65532"
    result = podman_run("--entrypoint", "id", IMAGE)
    assert result.stdout.split() == ["uid=65532(65532)", "gid=65532(65532)", "groups=65532(65532)"]


def test_starts_with_read_only_root(inspect: dict[str, Any]) -> None:
    assert "usage: usersession-operator" in podman_run(IMAGE, "run", "--help").stdout
    # Importing everything the operator runs writes nothing, even with no /tmp.
    result = script(
        "podman",
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--read-only-tmpfs=false",
        "--entrypoint",
        "python3",
        IMAGE,
        "-c",
        "import kopf, kubernetes.client, usersession_operator.handlers; print('ok')",
    )
    assert result.stdout.strip() == "ok"
    # ...and cannot: the code and the rest of the filesystem are not writable.
    for path in ("/opt/venv/bin/usersession-operator", "/probe", "/var/tmp/probe"):
        result = podman_run("--entrypoint", "sh", IMAGE, "-c", f"echo x >> {path}", check=False)
        assert result.returncode != 0, path


def test_final_stage_has_no_build_tools_caches_build_secrets_or_dev_stack(
    inspect: dict[str, Any],
) -> None:
    site = "/opt/venv/lib/python3*/site-packages"
    probe = (
        "for p in /opt/venv/bin/pip* /root/.cache /src /run/secrets/ca "
        f"{site}/pip {site}/setuptools {site}/kubernetes/aio "
        # The local development stack and what only it needs stay out of the product.
        f"{site}/usersession_localstack {site}/cryptography; "
        'do if [ -e "$p" ]; then echo "present: $p"; fi; done; '
        'for t in gcc cc make git; do command -v "$t" && echo "present: $t"; done; true'
    )
    result = podman_run("--user", "0", "--entrypoint", "sh", IMAGE, "-c", probe)
    assert "present:" not in result.stdout, result.stdout
    # The CA that pip was given for the build (this machine's own additions to
    # the system bundle) must not have been baked into the image.
    bundle = podman_run("--entrypoint", "cat", IMAGE, "/etc/ssl/certs/ca-certificates.crt").stdout
    bundle = bundle.replace("\n", "")
    for local_ca in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        body = "".join(
            line
            for line in local_ca.read_text().splitlines()
            if line and not line.startswith("-----")
        )
        assert body[:200] not in bundle, local_ca


def test_containerised_operator_reconciles_a_usersession(built: str) -> None:
    result = script("run-check")
    out = result.stdout
    assert "container uid: 65532" in out, out
    assert "root filesystem: read-only" in out, out
    assert re.search(r"^usersession alice: phase Sleeping after \d+ s$", out, re.M), out
    assert "healthz: ok" in out, out
    assert re.search(r"^SIGTERM: stopped in \d+ s, exit code 0$", out, re.M), out
    assert out.rstrip().endswith("run-check: OK"), out
    # run-check stops what it started.
    leftovers = script("podman", "ps", "-a", "--format", "{{.Names}}").stdout
    assert "usersession-run-check" not in leftovers
