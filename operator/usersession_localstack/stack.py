"""The whole product on loopback: what `hack/run.sh` starts when no cluster is configured.

LocalCluster (control plane, Redis, CRDs, the real KEDA), then the Redis Secret
sessions use by default, the operator and the session API as their own
processes (the commands the image runs), and the pod runner that plays the
part of the containers kwok does not run. Everything stops together.
"""

from __future__ import annotations

import secrets
import shlex
import sys
import urllib.error
from pathlib import Path

from kubernetes import config

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, http_ok
from usersession_localstack.pods import PodRunner
from usersession_localstack.process import Component, Started, stop_all

NAMESPACE = "default"
SECRET_NAME, SECRET_KEY = "redis-auth", "password"
USER_ID = "alice@example.com"


class Stack(Started):
    def __init__(self, workdir: Path | None = None, keep_workdir: bool = False) -> None:
        self.cluster = LocalCluster(workdir=workdir, keep_workdir=keep_workdir)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.user_token = secrets.token_urlsafe(24)
        self.admin_token = secrets.token_urlsafe(24)
        self.env_file = self.cluster.workdir / "env"
        self.runner: PodRunner | None = None
        self.processes: list[Component] = []  # stopped before the cluster

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        # Ours together (operator, session API), then the cluster's: each layer
        # shuts down while the one below it still answers.
        stop_all(self.processes)
        self.cluster.stop()

    def _start(self) -> None:
        cluster = self.cluster.start()
        cluster.api(
            "POST",
            f"/api/v1/namespaces/{NAMESPACE}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET_NAME},
                "stringData": {SECRET_KEY: cluster.redis_password},
            },
        )
        redis = f"{cluster.redis_host}:{cluster.redis_port}"
        logs = cluster.workdir / "logs"
        push = free_port()
        self.processes.append(
            start_operator(
                cluster,
                logs,
                USERSESSION_PUSH_PORT=str(push),
                USERSESSION_PUSH_ADDRESS=f"127.0.0.1:{push}",
                # KEDA trusts the stack's CA, as a cluster's KEDA would its issuer's.
                USERSESSION_PUSH_TLS_DIR=str(cluster.pki.push_tls_dir),
            )
        )
        common = {
            "KUBECONFIG": str(cluster.kubeconfig),
            "HOME": str(cluster.workdir),
            "PATH": "/usr/bin:/bin",
        }
        tokens = cluster.workdir / "tokens.yaml"
        tokens.write_text(
            f"{self.user_token}: {{user: {USER_ID}}}\n{self.admin_token}: {{admin: true}}\n"
        )
        tokens.chmod(0o600)
        api = Component(
            "usersession-api",
            [sys.executable, "-m", "usersession_operator.sessionapi"],
            logs,
            env={
                **common,
                "SESSIONAPI_NAMESPACE": NAMESPACE,
                "SESSIONAPI_PORT": str(self.api_port),
                "SESSIONAPI_REDIS_ADDRESS": redis,
                "SESSIONAPI_TOKENS_FILE": str(tokens),
                "SESSIONAPI_DEFAULT_IMAGE": "registry.example.com/session-worker:0.1.0",
            },
        )
        api.start()
        self.processes.append(api)
        api.wait_until(lambda: _ok(f"{self.api_url}/health"), 60)
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        self.runner = PodRunner(api_client, logs).start()
        self.env_file.write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.exports().items())
        )
        self.env_file.chmod(0o600)

    def exports(self) -> dict[str, str]:
        """What a second terminal needs: `source <workdir>/env`."""
        c = self.cluster
        return {
            "KUBECONFIG": str(c.kubeconfig),
            "API": self.api_url,
            "TOKEN": self.user_token,
            "ADMIN_TOKEN": self.admin_token,
            "REDIS_PORT": str(c.redis_port),
            "REDISCLI_AUTH": c.redis_password,
        }

    def banner(self) -> str:
        c = self.cluster
        return (
            "\nThe whole product is running on loopback: control plane, Redis, KEDA, "
            "operator, session API,\nand a reference worker process for each Running "
            "session pod.\n"
            f"  kubeconfig:  {c.kubeconfig}\n"
            f"  redis:       127.0.0.1:{c.redis_port} (password in {c.redis_password_file};"
            f" Secret {NAMESPACE}/{SECRET_NAME})\n"
            f"  session API: {self.api_url}  (user token for {USER_ID} and an admin token"
            " below)\n"
            f"  logs:        {c.workdir / 'logs'}\n"
            f"In another terminal:  source {self.env_file}\n"
            '  then e.g.  curl -s -H "Authorization: Bearer $TOKEN" $API/sessions\n'
            "Ctrl-C stops everything.\n"
        )


def _ok(url: str) -> bool:
    try:
        return http_ok(url)
    except urllib.error.HTTPError:
        return False


def start_operator(cluster: LocalCluster, log_dir: Path, **settings: str) -> Component:
    """The operator as its own process (the image's command) against this cluster's
    API server and Redis, once its health endpoint answers. USERSESSION_* settings
    given by keyword win over these defaults; the caller stops it."""
    liveness = free_port()
    operator = Component(
        "usersession-operator",
        [sys.executable, "-m", "usersession_operator.cli", "run"],
        log_dir,
        env={
            "KUBECONFIG": str(cluster.kubeconfig),
            "HOME": str(cluster.workdir),
            "PATH": "/usr/bin:/bin",
            "USERSESSION_REDIS_ADDRESS": f"{cluster.redis_host}:{cluster.redis_port}",
            "USERSESSION_LIVENESS_PORT": str(liveness),
            "USERSESSION_METRICS_PORT": str(free_port()),
            **settings,
        },
    )
    operator.start()
    try:
        operator.wait_until(lambda: http_ok(f"http://127.0.0.1:{liveness}/healthz"), 60)
    except BaseException:
        operator.stop()
        raise
    return operator
