"""How a session authenticates to Redis beyond the password: ACL username and TLS.

Only references live here (Secret or ConfigMap, key): the values are read by
whoever connects (operator, session API, KEDA, the pod), never copied anywhere.
Kept apart from model.py and spec.py so the settings of both processes can share the
environment parsing without importing the spec parser.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

SECRET = "Secret"  # noqa: S105 (a kind of object, not a password)
CONFIG_MAP = "ConfigMap"
DEFAULT_USERNAME_KEY = "username"
DEFAULT_CA_KEY = "ca.crt"
# The keys of a kubernetes.io/tls Secret, which cert-manager and most tools write.
DEFAULT_CERT_KEY = "tls.crt"
DEFAULT_KEY_KEY = "tls.key"


@dataclass(frozen=True, slots=True)
class KeyRef:
    """One key of a Secret or ConfigMap in the session's namespace."""

    kind: str  # SECRET or CONFIG_MAP
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class RedisTls:
    """TLS to Redis. Without a CA the system's trusted CAs verify the server
    (what managed Redis with a public CA needs)."""

    ca: KeyRef | None = None
    # Both or neither: mutual TLS with a client certificate from one Secret.
    client_cert: KeyRef | None = None
    client_key: KeyRef | None = None
    # The name the server's certificate must carry, when it is not the host of
    # the address (an IP address, say). KEDA cannot be told this: see docs/operations.md.
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class RedisAuthDefaults:
    """The operator-level defaults for sessions that leave these fields out."""

    username: KeyRef | None = None
    tls: RedisTls | None = None


@dataclass(frozen=True, slots=True)
class RedisDefaults:
    """The Redis a session falls back to when its spec.redis leaves fields out."""

    address: str = "redis:6379"  # host:port as seen from inside the cluster (KEDA and pods)
    database: int = 0
    secret_name: str = "redis-auth"  # noqa: S105 - a Secret's name, in the session's namespace
    secret_key: str = "password"  # noqa: S105 - the key inside that Secret
    auth: RedisAuthDefaults = field(default_factory=RedisAuthDefaults)  # ACL user and TLS


def auth_defaults_from_env(get: Callable[[str], str | None], prefix: str) -> RedisAuthDefaults:
    """Read <prefix>REDIS_USERNAME_SECRET_NAME/_KEY and <prefix>REDIS_TLS* through get
    (which takes the name without the prefix). A contradiction raises ValueError."""
    username = None
    if name := get("REDIS_USERNAME_SECRET_NAME"):
        username = KeyRef(SECRET, name, get("REDIS_USERNAME_SECRET_KEY") or DEFAULT_USERNAME_KEY)
    enabled = (get("REDIS_TLS") or "false").strip().lower()
    if enabled not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError(f"{prefix}REDIS_TLS must be true or false, got {enabled!r}")
    ca_secret, ca_map = get("REDIS_TLS_CA_SECRET_NAME"), get("REDIS_TLS_CA_CONFIGMAP_NAME")
    client = get("REDIS_TLS_CLIENT_SECRET_NAME")
    server_name = get("REDIS_TLS_SERVER_NAME")
    if enabled not in {"true", "1", "yes"}:
        if ca_secret or ca_map or client or server_name:
            raise ValueError(
                f"{prefix}REDIS_TLS_* are set but {prefix}REDIS_TLS is not true: "
                "set it, or remove them"
            )
        return RedisAuthDefaults(username=username)
    if ca_secret and ca_map:
        raise ValueError(
            f"set {prefix}REDIS_TLS_CA_SECRET_NAME or {prefix}REDIS_TLS_CA_CONFIGMAP_NAME, not both"
        )
    ca_key = get("REDIS_TLS_CA_KEY") or DEFAULT_CA_KEY
    ca = None
    if ca_secret:
        ca = KeyRef(SECRET, ca_secret, ca_key)
    elif ca_map:
        ca = KeyRef(CONFIG_MAP, ca_map, ca_key)
    tls = RedisTls(
        ca=ca,
        client_cert=KeyRef(SECRET, client, DEFAULT_CERT_KEY) if client else None,
        client_key=KeyRef(SECRET, client, DEFAULT_KEY_KEY) if client else None,
        server_name=server_name or None,
    )
    return RedisAuthDefaults(username=username, tls=tls)
