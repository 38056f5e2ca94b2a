"""`usersession-operator run` as a user starts it: a process, its exit code and its output."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port

OPERATOR = Path(sys.executable).with_name("usersession-operator")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        # Listening, so that no SO_REUSEADDR on the other side can share the port.
        sock.listen()
        yield sock.getsockname()[1]


def test_taken_metrics_port_stops_the_operator_with_a_clear_message(
    cluster: LocalCluster, taken_port: int
) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_LISTEN_HOST": "127.0.0.1",
    }
    argv = ["run", "--metrics-port", str(taken_port), "--liveness-port", str(free_port())]
    # Before the fix, kopf retried the startup handler every minute for ever:
    # the timeout is what fails then.
    done = subprocess.run(
        [str(OPERATOR), *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0, done.stdout
    assert f"127.0.0.1:{taken_port}" in done.stdout
    assert "USERSESSION_METRICS_PORT" in done.stdout
    assert "--metrics-port" in done.stdout
    assert "Traceback" not in done.stdout, done.stdout


def test_without_a_cluster_the_operator_points_at_the_local_stack(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    done = subprocess.run(
        [str(OPERATOR), "run"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "no cluster configured" in done.stderr
    assert "hack/run.sh" in done.stderr


def test_json_logs_are_one_object_per_line(cluster: LocalCluster, taken_port: int) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
        "USERSESSION_LISTEN_HOST": "127.0.0.1",
        "USERSESSION_LOG_FORMAT": "json",
    }
    # The same failing start as above: it logs, then stops by itself.
    argv = ["run", "--metrics-port", str(taken_port), "--liveness-port", str(free_port())]
    done = subprocess.run(
        [str(OPERATOR), *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, done.stdout
    records = [json.loads(line) for line in lines]  # every line, not just some
    assert any(f"127.0.0.1:{taken_port}" in r["message"] for r in records), records
    assert {"message", "severity", "timestamp"} <= records[-1].keys(), records[-1]


def test_a_bad_log_format_is_refused_by_name(tmp_path: Path) -> None:
    env = {**os.environ, "USERSESSION_LOG_FORMAT": "yaml"}
    done = subprocess.run(
        [str(OPERATOR), "run"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert "USERSESSION_LOG_FORMAT must be text or json" in done.stderr


def test_a_kubeconfig_that_cannot_be_loaded_is_one_line_not_a_retry_loop(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\n")  # no clusters, no contexts
    env = {**os.environ, "KUBECONFIG": str(broken)}
    done = subprocess.run(
        [str(OPERATOR), "run"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "cannot load the cluster configuration" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_cluster_without_the_crd_stops_the_operator_with_one_line() -> None:
    # A control plane of its own, without the CRDs (keda=False installs none): the
    # fresh cluster a new user points the operator at before installing anything.
    with LocalCluster(keda=False) as bare:
        env = {**os.environ, "KUBECONFIG": str(bare.kubeconfig)}
        done = subprocess.run(
            [str(OPERATOR), "run"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "does not serve usersessions.sessions.ai-infra.dev/v1alpha1" in line
    assert "kubectl apply --server-side -f crds/" in line
