"""A second redis-server speaking only TLS, with an ACL user for sessions.

What managed Redis looks like: TLS (here mutual: the server asks every client
for a certificate signed by its CA), and an application user that may touch
only the sessions' keys and channels, with only the commands the operator, the
session API, KEDA and the worker send. The default user keeps full rights under
its own password, for tests to arrange and inspect. The plaintext instance of
LocalCluster is left alone, so nothing else changes.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import redis

from usersession_localstack.loopback import free_port
from usersession_localstack.pki import RedisTlsFiles, make_redis_tls
from usersession_localstack.process import Component, Started
from usersession_localstack.redisserver import redis_binary

# The least-privilege ACL docs/operations.md documents, command by command.
SESSION_KEYS = "~usersession:*"
SESSION_CHANNELS = ("&usersession:work@*", "&__keyspace@*__:usersession:*")
SESSION_COMMANDS = (
    # every client: connecting (AUTH needs no permission; the CLIENT SETINFO that
    # redis-py and go-redis send may be refused: both ignore the error)
    "+hello",
    "+select",
    "+ping",
    # operator: poll (one script per round trip), keyspace events and the work
    # channel, finalizer cleanup
    "+llen",
    "+evalsha",
    "+script|load",
    "+subscribe",
    "+unsubscribe",
    "+exists",
    "+scan",
    "+unlink",
    # session API: push, wake signal, chat replies
    "+lpush",
    "+set",
    "+publish",
    "+blmove",
    "+lindex",
    "+multi",
    "+exec",
    "+discard",
    # KEDA's redis scaler: a Lua script calling TYPE and LLEN
    "+eval",
    "+type",
    # worker: the reliable queue and its replies
    "+lrange",
    "+lrem",
    "+expire",
)


def session_user_rules() -> str:
    """The ACL SETUSER rules (without the password) of the sessions' user."""
    rules = ["on", "resetkeys", SESSION_KEYS, "resetchannels", *SESSION_CHANNELS, "-@all"]
    return " ".join([*rules, *SESSION_COMMANDS])


class TlsRedis(Started):
    """redis-server on a TLS-only port of 127.0.0.1; use as a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.admin_password = secrets.token_urlsafe(24)
        # Random, like the password: a leak test can only find what is unique.
        self.username = f"sessions-{secrets.token_hex(4)}"
        self.password = secrets.token_urlsafe(24)
        self.files: RedisTlsFiles = make_redis_tls(workdir / "pki")
        self._server: Component | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _start(self) -> None:
        binary = redis_binary()
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        files = self.files
        config = self.workdir / "redis-tls.conf"
        # Passwords in a 0600 file, not argv, where ps would show them.
        config.write_text(
            "bind 127.0.0.1\n"
            "port 0\n"
            f"tls-port {self.port}\n"
            f"tls-cert-file {files.server_cert}\n"
            f"tls-key-file {files.server_key}\n"
            f"tls-ca-cert-file {files.ca_cert}\n"
            "tls-auth-clients yes\n"
            f"requirepass {self.admin_password}\n"
            f"user {self.username} >{self.password} {session_user_rules()}\n"
            "notify-keyspace-events Kgl\n"
            'save ""\nappendonly no\n'
            f"dir {self.workdir}\n"
        )
        config.chmod(0o600)
        self._server = Component("redis-tls", [binary, str(config)], self.workdir / "logs")
        self._server.start()
        self._server.wait_until(self._answers, 30)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def admin(self, **options: object) -> redis.Redis:
        """The default user over mutual TLS: for tests to arrange and inspect."""
        return self.client(password=self.admin_password, **options)

    def client(self, **options: object) -> redis.Redis:
        files = self.files
        return redis.Redis(
            host=self.host,
            port=self.port,
            ssl=True,
            ssl_ca_certs=str(files.ca_cert),
            ssl_certfile=str(files.client_cert),
            ssl_keyfile=str(files.client_key),
            socket_timeout=5,
            **options,  # type: ignore[arg-type]
        )

    def _answers(self) -> bool:
        with self.admin() as conn:
            return bool(conn.ping())
