"""The main job: `hack/run.sh` runs the whole product, whatever kubeconfig the machine has.

This starts a second, complete stack (control plane, Redis, KEDA, operator,
session API, worker processes) through the real command, then walks through the
README's session API walkthrough: nobody scales anything by hand, and the chat
reply comes from the reference worker the stack runs for the woken pod.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from usersession_localstack.assets import REPO_ROOT
from usersession_localstack.loopback import wait_for

# A cluster nobody can reach (TEST-NET-1): talking to it would hang, then fail.
OTHER_CLUSTER = """\
apiVersion: v1
kind: Config
clusters: [{name: prod, cluster: {server: "https://192.0.2.1:6443"}}]
users: [{name: me, user: {token: not-a-token}}]
contexts: [{name: prod, context: {cluster: prod, user: me}}]
current-context: prod
"""


def _cache_dir() -> str:
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return os.environ.get("USERSESSION_CACHE") or f"{home}/usersession-operator"


@pytest.fixture
def main_job(tmp_path: Path) -> Any:
    """hack/run.sh as a user runs it, on a machine whose kubeconfig names another
    cluster: without --cluster it must never be used."""
    elsewhere = tmp_path / ".kube" / "config"
    elsewhere.parent.mkdir()
    elsewhere.write_text(OTHER_CLUSTER)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(HOME=str(tmp_path), KUBECONFIG=str(elsewhere), USERSESSION_CACHE=_cache_dir())
    # Started as `hack/run.sh &` from a script would be: with SIGINT ignored,
    # which the stack must undo for the Ctrl-C at the end to stop it.
    process = subprocess.Popen(
        ["bash", "-c", 'trap "" INT; exec bash "$0"', str(REPO_ROOT / "hack" / "run.sh")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        source = wait_for(
            lambda: next(
                (ln for ln in lines if "source " in ln and ln.strip().endswith("/env")), ""
            ),
            timeout=300,
        )
        env_file = Path(source.split("source ", 1)[1].strip())
        exports = dict(
            line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines()
        )
        yield {k: shlex.split(v)[0] for k, v in exports.items()}, lines, process, env_file
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise


def test_run_sh_runs_the_whole_product_whatever_kubeconfig_says(main_job: Any) -> None:
    exports, lines, process, env_file = main_job
    api, token = exports["API"], exports["TOKEN"]
    banner = "".join(lines)
    for what in ("kubeconfig:", "redis:", "session API:", exports["KUBECONFIG"], api):
        assert what in banner, banner
    headers = {"Authorization": f"Bearer {token}"}

    def call(method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(method, api + path, json=body, headers=headers, timeout=60)

    assert requests.get(api + "/health", timeout=10).status_code == 200
    created = call("POST", "/session/create", {"user_id": "alice@example.com"})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    wait_for(lambda: call("GET", f"/session/{sid}/status").json().get("phase") == "Sleeping", 60)

    assert call("POST", f"/session/{sid}/wake").json()["queued"] is True
    # KEDA (polling every 10 s by default) wakes it; nobody runs kubectl scale.
    status = wait_for(
        lambda: (s := call("GET", f"/session/{sid}/status").json())["phase"] == "Running" and s,
        60,
    )
    assert status["pod"]["ready"] is True

    chat = call("POST", f"/session/{sid}/chat", {"message": "Hello!"})
    assert chat.status_code == 200, chat.text
    assert chat.json()["reply"] == "echo: Hello!"  # from the worker process the stack runs

    assert sid in [item["id"] for item in call("GET", "/sessions").json()["items"]]
    assert "sessionapi_chats_total" in call("GET", "/metrics").text

    slept = call("POST", f"/session/{sid}/sleep")
    assert slept.status_code == 200, slept.text
    assert slept.json()["phase"] == "Sleeping"
    assert call("DELETE", f"/session/{sid}").status_code == 202
    wait_for(lambda: call("GET", f"/session/{sid}/status").status_code == 404, 60)

    # The operator starts only once every CRD is served: no retried requests.
    for noise in ("storage is (re)initializing", "Request attempt"):
        assert not any(noise in line for line in lines), "".join(lines)

    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=60) == 0, "".join(lines[-40:])
    assert not env_file.exists(), "the stack left its directory behind"


def test_run_sh_with_cluster_runs_only_the_operator(tmp_path: Path) -> None:
    # No kubeconfig at all: the operator, not a local stack, answers (and exits).
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(HOME=str(tmp_path), USERSESSION_CACHE=_cache_dir())
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "run.sh"), "--cluster"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "usersession-operator: no cluster configured" in done.stderr
