"""Loopback plumbing of the local stack: free ports, health checks, waiting."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def https_insecure_ok(url: str) -> bool:
    # kube-controller-manager and kube-scheduler serve /healthz with a
    # self-signed certificate; only liveness matters here, not identity.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.closing(urllib.request.urlopen(url, context=ctx, timeout=2)) as response:
        return bool(response.status == 200)


def wait_for(condition: Any, timeout: float, interval: float = 0.2) -> Any:
    """Poll until condition() is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
