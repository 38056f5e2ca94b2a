"""The container image, built from the real Dockerfile and run with podman.

The image is built and podman run through hack/image.sh, the same commands a
person runs, so the test cannot drift from the documented way to build it. The
operator-in-a-container check starts its own local stack (seconds, warm)
instead of borrowing tests/integration's session fixture: the containerised
operator is a separate process that only gets a kubeconfig file, and keeping
this tier out of tests/integration keeps image builds out of the default
integration run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.registry import crane, oci_registry
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, http_ok, wait_for

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


def test_the_image_is_pushed_to_a_registry_and_runs_pulled_back_by_digest(
    built: str, tmp_path: Path
) -> None:
    # docs/operations.md ("Releasing", podman), REGISTRY being a real OCI
    # registry on loopback (plain HTTP, hence --tls-verify=false).
    with oci_registry(tmp_path) as registry:
        remote = f"{registry}/usersession-operator:0.1.0"
        script("podman", "tag", IMAGE, remote)
        digest_file = tmp_path / "digest"
        script("podman", "push", "--tls-verify=false", "--digestfile", str(digest_file), remote)
        digest = digest_file.read_text().strip()
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest
        # The registry serves that manifest under the tag (what image.digest pins).
        served = subprocess.run(
            [crane(), "digest", "--insecure", remote], check=True, capture_output=True, text=True
        )
        assert served.stdout.strip() == digest
        pinned = f"{registry}/usersession-operator@{digest}"
        script("podman", "rmi", remote)
        try:
            script("podman", "pull", "--quiet", "--tls-verify=false", pinned)
            assert "usage: usersession-operator" in podman_run(pinned, "run", "--help").stdout
        finally:
            script("podman", "rmi", "--ignore", pinned, check=False)


def test_containerised_operator_reconciles_a_usersession(built: str, tmp_path: Path) -> None:
    """The image as a pod runs it, against a local stack: it reconciles the minimal
    example to Sleeping and exits 0 on SIGTERM, by itself, within the grace period."""
    name = f"usersession-image-test-{os.getpid()}"
    with LocalCluster() as cluster:
        cluster.api(
            "POST",
            "/api/v1/namespaces/default/secrets",
            {
                "metadata": {"name": "redis-auth"},
                "stringData": {"password": cluster.redis_password},
            },
        )
        # The container's user gets its own read-only copy of the 0600 kubeconfig.
        kubeconfig = tmp_path / "kubeconfig"
        shutil.copy(cluster.kubeconfig, kubeconfig)
        os.chown(kubeconfig, 65532, 65532)
        kubeconfig.chmod(0o400)
        liveness = free_port()
        settings = {
            "KUBECONFIG": "/etc/usersession/kubeconfig",
            "USERSESSION_REDIS_ADDRESS": f"127.0.0.1:{cluster.redis_port}",
            "USERSESSION_LISTEN_HOST": "127.0.0.1",
            "USERSESSION_LIVENESS_PORT": str(liveness),
            "USERSESSION_METRICS_PORT": str(free_port()),
            "USERSESSION_POLL_INTERVAL": "1",
        }
        # The pod's hardening (as the chart has it): read-only root, /tmp only,
        # a numeric non-root user, no capabilities, no privilege escalation.
        script(
            "podman", "run", "-d", "--name", name, "--network", "host",
            "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=16m,mode=1777",
            "--user", "65532:65532", "--cap-drop", "all",
            "--security-opt", "no-new-privileges",
            "-v", f"{kubeconfig}:/etc/usersession/kubeconfig:ro",
            *[arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")],
            IMAGE,
        )  # fmt: skip
        try:
            assert script("podman", "exec", name, "id", "-u").stdout.strip() == "65532"
            probe = "touch /opt/venv/probe || touch /probe"
            assert script("podman", "exec", name, "sh", "-c", probe, check=False).returncode != 0

            example = yaml.safe_load((ROOT / "examples" / "usersession-minimal.yaml").read_text())
            path = "/apis/sessions.ai-infra.dev/v1alpha1/namespaces/default/usersessions"
            cluster.api("POST", path, example)

            def sleeping() -> bool:
                state = script("podman", "inspect", "--format", "{{.State.Running}}", name)
                assert state.stdout.strip() == "true", script("podman", "logs", name).stderr
                status = cluster.api("GET", f"{path}/{example['metadata']['name']}").get("status")
                return (status or {}).get("phase") == "Sleeping"

            started = time.monotonic()
            wait_for(sleeping, timeout=120, interval=1)
            print(f"containerised operator: Sleeping after {time.monotonic() - started:.1f} s")
            assert http_ok(f"http://127.0.0.1:{liveness}/healthz")

            # Kubernetes stops a pod with SIGTERM and a grace period: the operator
            # must exit by itself, not wait for the SIGKILL.
            started = time.monotonic()
            script("podman", "stop", "-t", "30", name)
            stopped_after = time.monotonic() - started
            code = script("podman", "inspect", "--format", "{{.State.ExitCode}}", name).stdout
            assert code.strip() == "0", script("podman", "logs", name).stderr
            assert stopped_after < 25, stopped_after
        finally:
            script("podman", "rm", "-f", "-t", "20", name, check=False)
