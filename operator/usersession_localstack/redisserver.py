"""redis-server for the local stack: loopback only, with a password, as managed Redis has."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from usersession_localstack.process import Component, ComponentFailed


def launch_redis(workdir: Path, port: int, password: str) -> Component:
    """Start redis-server on 127.0.0.1:port and return it once it answers AUTH and PING."""
    binary = redis_binary()
    config = workdir / "redis.conf"
    # The password goes into a 0600 file rather than argv, where ps would show it.
    config.write_text(
        "bind 127.0.0.1\n"
        f"port {port}\n"
        f"requirepass {password}\n"
        # Keyspace events for lists (and DEL, when one empties), which the
        # operator listens to for fast wakes: what the README recommends.
        "notify-keyspace-events Kgl\n"
        # Append-only, so a stop/start (an outage in tests) keeps the data
        # as a real Redis restart would.
        'save ""\nappendonly yes\nappendfsync always\n'
        f"dir {workdir}\n"
    )
    config.chmod(0o600)
    redis = Component("redis-server", [binary, str(config)], workdir / "logs")
    redis.start()
    redis.wait_until(lambda: _answers(port, password), 30)
    return redis


def redis_binary() -> str:
    """The redis-server program, or an error that says how to get it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ComponentFailed("redis-server not found: install it (apt-get install redis-server)")
    return binary


def _answers(port: int, password: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
        reply = b""
        while b"PONG" not in reply and len(reply) < 256:
            chunk = sock.recv(256)
            if not chunk:
                break
            reply += chunk
        return b"+OK" in reply and b"+PONG" in reply
