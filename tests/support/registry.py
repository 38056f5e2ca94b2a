"""A real OCI registry on loopback (go-containerregistry's, `crane registry
serve`), for the release path: what a team pushes the chart and the image to.

It speaks plain HTTP on 127.0.0.1, so clients are told so (helm --plain-http,
podman --tls-verify=false); everything else is the documented commands.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.tools import go_tool
from usersession_localstack.loopback import free_port, http_ok, wait_for


def crane() -> str:
    return go_tool("crane")


@contextmanager
def oci_registry(storage: Path) -> Iterator[str]:
    """A registry storing blobs under `storage`; yields its host:port."""
    address = f"127.0.0.1:{free_port()}"
    blobs = storage / "blobs"
    blobs.mkdir()  # crane writes uploads there and does not create it
    log = (storage / "registry.log").open("w")
    process = subprocess.Popen(
        [crane(), "registry", "serve", "--address", address, "--disk", str(blobs)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: _answers(f"http://{address}/v2/"), timeout=30)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _answers(url: str) -> bool:
    try:
        return http_ok(url)
    except OSError:
        return False
