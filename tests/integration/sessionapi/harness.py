"""Helpers of the session API's integration tests: a served app, an HTTP client, the worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from aiohttp import web

from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import free_port, wait_for
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.settings import RedisDefaults

WORKER = Path(__file__).parents[3] / "examples" / "worker" / "worker.py"

IMAGE = "registry.example.com/session-worker:0.1.0"

ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
TOKENS = f"""
{ALICE_TOKEN}: {{user: alice@example.com}}
{BOB_TOKEN}: {{user: bob@example.com}}
{ADMIN_TOKEN}: {{admin: true}}
"""


class Served:
    """An aiohttp app on a free loopback port, in a thread with its own event loop."""

    def __init__(self, app: web.Application) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Served:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@dataclass
class Http:
    base: str
    token: str | None = None

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return requests.request(
            method, self.base + path, json=body, headers=headers, timeout=90, **kwargs
        )

    def as_(self, token: str | None) -> Http:
        return Http(self.base, token)


class Worker:
    """The reference worker as a subprocess, with the env the operator gives the pod."""

    def __init__(self, cluster: LocalCluster, queue: str) -> None:
        env = {
            **os.environ,
            "SESSION_QUEUE": queue,
            "REDIS_HOST": cluster.redis_host,
            "REDIS_PORT": str(cluster.redis_port),
            "REDIS_DB": "0",
            "REDIS_PASSWORD": cluster.redis_password,
        }
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=30)
        return self.process.returncode, output


def create_sleeping(http: Http, **body: Any) -> dict[str, Any]:
    """Create a session through the API and wait until the operator reports it Sleeping."""
    created = http.call("POST", "/session/create", body)
    assert created.status_code == 201, created.text
    sid = created.json()["id"]

    def sleeping() -> dict[str, Any] | None:
        status: dict[str, Any] = http.call("GET", f"/session/{sid}/status").json()
        return status if status.get("phase") == "Sleeping" else None

    result: dict[str, Any] = wait_for(sleeping, timeout=30)
    return result


def api_settings(cluster: LocalCluster, namespace: str, **overrides: Any) -> ApiSettings:
    return ApiSettings(
        namespace=namespace,
        redis=RedisDefaults(address=f"{cluster.redis_host}:{cluster.redis_port}"),
        tokens=TOKENS,
        default_image=IMAGE,
        reply_wait_seconds=5,
        **overrides,
    )
