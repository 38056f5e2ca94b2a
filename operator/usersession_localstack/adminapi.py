"""Bare admin requests to the local API server, for the stack's own setup (CRDs, nodes,
KEDA's namespace): the harness needs no client library for these."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from usersession_localstack.pki import Pki


class NotReady(Exception):
    """The API server answers, but some of its readiness checks fail."""


class AdminApi:
    def __init__(self, server: str, ca_cert: Path, cert: Path, key: Path) -> None:
        self.server = server
        self._ca_cert, self._cert, self._key = ca_cert, cert, key

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self._ca_cert))
        ctx.load_cert_chain(str(self._cert), str(self._key))
        return ctx

    def api(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        """One request as cluster-admin: parsed JSON, or text for other answers."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(
                request, context=self.ssl_context(), timeout=10
            ) as response:
                payload = response.read()
                content_type = response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            # The API server says why in the body; keep the type callers match on.
            reason = exc.read().decode(errors="replace")[:2000]
            raise urllib.error.HTTPError(
                exc.url, exc.code, f"{method} {path}: {exc.reason}: {reason}", exc.headers, None
            ) from None
        if content_type != "application/json":
            return payload.decode()
        return json.loads(payload) if payload else None

    def ready(self) -> bool:
        """/readyz answers 200; otherwise raises NotReady naming the checks that fail,
        so a start that times out says which part of the API server was still waiting."""
        try:
            self.api("GET", "/readyz?verbose")
        except urllib.error.HTTPError as exc:
            failing = [line for line in str(exc.reason).splitlines() if line.startswith("[-]")]
            raise NotReady(", ".join(failing) or str(exc.reason)[:200]) from None
        return True

    def api_ok(self, path: str) -> bool:
        try:
            self.api("GET", path)
        except OSError:
            return False
        return True


def admin_kubeconfig(server: str, pki: Pki) -> dict[str, Any]:
    """A kubeconfig for cluster-admin (the stack's own client certificate)."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
