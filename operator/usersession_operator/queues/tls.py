"""TLS and credentials for the operator's and the session API's Redis clients.

Values are read from the Secrets and ConfigMaps a session references, turned
into a client, and kept in memory only. Python's ssl module loads a client
certificate only from files, so the certificate and key touch disk for the
moment of loading, in a private temporary directory removed at once.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


class BadCredential(LookupError):
    """A referenced value exists but cannot be used (not PEM, say); the message names it."""


@dataclass(frozen=True)
class Credentials:
    # Out of repr: a stray log of this object must not print them.
    username: str | None = field(repr=False)
    password: str = field(repr=False)
    tls: ssl.SSLContext | None = field(repr=False)
    server_name: str | None
    # Tells apart clients (and groups sessions) without holding the values as keys.
    fingerprint: str


def fingerprint(*values: str | None) -> str:
    digest = hashlib.sha256()
    for value in values:
        digest.update(b"\x00" if value is None else b"\x01" + value.encode() + b"\x00")
    return digest.hexdigest()


def tls_context(ca: str | None, cert: str | None, key: str | None, where: str) -> ssl.SSLContext:
    """A verifying client context: the given CA only, or the system's CAs without one."""
    try:
        context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    except (ssl.SSLError, ValueError) as exc:
        raise BadCredential(f"the Redis CA ({where}) is not a PEM certificate: {exc}") from None
    if cert is not None and key is not None:
        _load_client_certificate(context, cert, key, where)
    return context


def _load_client_certificate(context: ssl.SSLContext, cert: str, key: str, where: str) -> None:
    with tempfile.TemporaryDirectory(prefix="usersession-redis-tls-") as directory:
        cert_path, key_path = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        for path, text in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            # ssl's message names neither file contents nor the key.
            raise BadCredential(
                f"the Redis client certificate and key ({where}) do not load: {exc}"
            ) from None


class TlsConnection(aioredis.Connection):
    """A Redis connection over TLS with a ready SSLContext and an optional server name.

    redis-py's own SSLConnection builds its context from file paths and always
    verifies the dialled host; a session's CA is in memory and its server's
    certificate may carry another name (serverName, or the in-cluster name when
    the operator dials a port-forward).
    """

    def __init__(
        self, *, tls_context: ssl.SSLContext, server_name: str | None = None, **kwargs: Any
    ) -> None:
        self._tls_context = tls_context
        self._server_name = server_name
        super().__init__(**kwargs)

    def _connection_arguments(self) -> Mapping[str, Any]:
        arguments = dict(super()._connection_arguments())
        arguments["ssl"] = self._tls_context
        arguments["server_hostname"] = self._server_name or self.host
        return arguments


def make_client(
    host: str, port: int, database: int, credentials: Credentials, **options: Any
) -> aioredis.Redis:
    """A client that fails at once: redis-py (6 and later) retries a refused or broken
    connection up to ten times with backoff, a wrong password included, which held a
    poll or a reconcile for many seconds. Callers have their own retry rules (a
    refused password once more with the Secret read again; the next poll)."""
    options.setdefault("retry", Retry(NoBackoff(), 0))
    if credentials.tls is None:
        return aioredis.Redis(
            host=host,
            port=port,
            db=database,
            username=credentials.username,
            password=credentials.password,
            **options,
        )
    pool = aioredis.ConnectionPool(
        connection_class=TlsConnection,
        host=host,
        port=port,
        db=database,
        username=credentials.username,
        password=credentials.password,
        tls_context=credentials.tls,
        server_name=credentials.server_name,
        **options,
    )
    return aioredis.Redis.from_pool(pool)
