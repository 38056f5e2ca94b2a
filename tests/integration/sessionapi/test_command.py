"""`usersession-api` as its own process: settings from SESSIONAPI_* env, packaged OpenAPI,
JSON logs and the metrics every process exports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import requests

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for

from .harness import ALICE_TOKEN, TOKENS


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.ConnectionError:
        return 0


def test_the_command_serves_the_api(
    cluster: LocalCluster, api_namespace: str, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(TOKENS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("usersession-api")), "--port", str(port)],
        env={
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "SESSIONAPI_NAMESPACE": api_namespace,
            "SESSIONAPI_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
            "SESSIONAPI_TOKENS_FILE": str(tokens),
            "SESSIONAPI_LOG_FORMAT": "json",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: _status(f"{base}/health") == 200, timeout=30)
        assert requests.get(f"{base}/openapi.json", timeout=5).json()["openapi"].startswith("3.")
        assert _status(f"{base}/sessions") == 401
        listed = requests.get(
            f"{base}/sessions", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}, timeout=5
        )
        assert listed.status_code == 200
        metrics = requests.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {ALICE_TOKEN}"}, timeout=5
        ).text
        assert "sessionapi_build_info{" in metrics
        assert "process_resident_memory_bytes " in metrics
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "the access log at least"
    records = [json.loads(line) for line in lines]  # every line, for a log pipeline
    assert all({"message", "severity", "timestamp"} <= r.keys() for r in records), records


def test_the_command_refuses_an_unknown_log_format(cluster: LocalCluster) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("usersession-api"))],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "SESSIONAPI_LOG_FORMAT": "xml"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "SESSIONAPI_LOG_FORMAT must be text or json, got 'xml'" in result.stderr


def test_the_command_refuses_to_start_without_tokens(cluster: LocalCluster) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONAPI_")}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("usersession-api"))],
        env={**env, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no token source" in result.stderr
