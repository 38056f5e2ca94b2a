"""The UserSession resource as typed, defaulted Python values (spec.py reads them),
its phases, and what a session falls back to.

The API server applies the schema's defaults, but bodies built by tests or
tools may lack them, so every default is repeated here with the same value
(tests/unit/test_crd.py keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from usersession_operator.session.redisrefs import KeyRef, RedisDefaults, RedisTls

GROUP = "sessions.ai-infra.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# The finalizer (kopf adds and removes it): the session's Redis keys are cleaned first.
FINALIZER = f"{GROUP}/cleanup"
KIND = "UserSession"
PLURAL = "usersessions"

DEFAULT_ACTIVATION_LENGTH = 0
DEFAULT_TARGET_LENGTH = 1
DEFAULT_IDLE_TIMEOUT_SECONDS = 120
DEFAULT_POLLING_INTERVAL_SECONDS = 10
# A woken session whose pod is not Ready after this long is Degraded: longer than a
# slow image pull on a cold node, shorter than anyone would wait for a reply.
DEFAULT_START_TIMEOUT_SECONDS = 300
DEFAULT_MOUNT_PATH = "/data"
DEFAULT_ACCESS_MODE = "ReadWriteOnce"
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DEFAULT_SECRET_KEY = "password"  # noqa: S105 (the key inside the Secret, not a password)
# Kubernetes' own default. KEDA only scales a session down once nothing is in
# flight, so this bounds a rollout or an eviction, not a normal sleep.
DEFAULT_TERMINATION_GRACE_SECONDS = 30
MAX_TERMINATION_GRACE_SECONDS = 3600

# Set by the operator on the session container. A user value after ours would
# win in the container, letting REDIS_PASSWORD become a literal, so the CRD and
# session_from_body both refuse them.
RESERVED_ENV_NAMES = frozenset(
    {
        "SESSION_NAME",
        "SESSION_NAMESPACE",
        "SESSION_QUEUE",
        "USER_ID",
        "REDIS_ADDRESS",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_DB",
        "REDIS_PASSWORD",
        "REDIS_USERNAME",
        "REDIS_TLS",
        "REDIS_TLS_CA_FILE",
        "REDIS_TLS_CERT_FILE",
        "REDIS_TLS_KEY_FILE",
        "REDIS_TLS_SERVER_NAME",
    }
)


# The spec.workload fields the operator's settings may give every session (the
# chart's sessionWorkloadDefaults): where a platform's sessions run and with what
# rights. A session's own field replaces the default whole, except the two
# security contexts, which are laid key by key: built-in restricted defaults
# (builders/podsecurity.py), then the operator's, then the session's.
WORKLOAD_DEFAULT_FIELDS = (
    "resources",
    "nodeSelector",
    "tolerations",
    "affinity",
    "imagePullSecrets",
    "priorityClassName",
    "securityContext",
    "podSecurityContext",
)
LAYERED_WORKLOAD_FIELDS = ("securityContext", "podSecurityContext")


class Phase(StrEnum):
    """status.phase: the one list of phases. Metrics and the session API use it; the
    CRD's and the OpenAPI document's enums are checked against it by unit tests."""

    PENDING = "Pending"
    SLEEPING = "Sleeping"
    WAKING = "Waking"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    DEGRADED = "Degraded"
    TERMINATING = "Terminating"


class Defaults(Protocol):
    """What a session leaves out comes from here: the operator's settings
    (settings.OperatorSettings), which the session API shares."""

    @property
    def redis(self) -> RedisDefaults: ...

    @property
    def push_address(self) -> str | None: ...

    @property
    def push_tls_dir(self) -> str | None: ...

    @property
    def processing_trigger(self) -> str: ...

    @property
    def workload_defaults(self) -> Mapping[str, Any]: ...


class InvalidSession(ValueError):
    """A UserSession the operator cannot act on; the message is meant for its owner."""


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    name: str
    key: str


@dataclass(frozen=True, slots=True)
class RedisTarget:
    host: str
    port: int
    database: int
    password_secret: SecretKeyRef
    username_secret: KeyRef | None = None  # None: Redis's default user
    tls: RedisTls | None = None  # None: plaintext

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Workload:
    image: str
    image_pull_policy: str | None = None
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[dict[str, Any], ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    service_account_name: str | None = None
    pod_labels: dict[str, str] = field(default_factory=dict)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    termination_grace_period_seconds: int = DEFAULT_TERMINATION_GRACE_SECONDS
    # Laid over the restricted defaults key by key (builders/podsecurity.py).
    security_context: dict[str, Any] = field(default_factory=dict)
    pod_security_context: dict[str, Any] = field(default_factory=dict)
    affinity: dict[str, Any] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    priority_class_name: str | None = None


@dataclass(frozen=True, slots=True)
class Storage:
    """A PersistentVolumeClaim of the session's own, mounted into its pod."""

    size: str  # a Kubernetes quantity, e.g. 10Gi
    mount_path: str = DEFAULT_MOUNT_PATH
    access_modes: tuple[str, ...] = (DEFAULT_ACCESS_MODE,)
    storage_class_name: str | None = None  # None: the cluster's default class
    # Delete: the claim goes with the session. Retain: it stays, and a new
    # session of the same name takes it over.
    deletion_policy: str = "Delete"

    @property
    def retained(self) -> bool:
        return self.deletion_policy == "Retain"


@dataclass(frozen=True, slots=True)
class WarmSchedule:
    """Hours during which the session stays awake even when idle."""

    timezone: str  # IANA name, e.g. Europe/Berlin
    start: str  # HH:MM, inclusive
    end: str  # HH:MM, after start on the same day
    days: tuple[str, ...] = WEEKDAYS  # the days the window opens on


@dataclass(frozen=True, slots=True)
class Session:
    namespace: str
    name: str
    uid: str
    generation: int
    user_id: str
    suspend: bool
    workload: Workload
    queue_name: str
    activation_length: int
    target_length: int
    idle_timeout_seconds: int
    polling_interval_seconds: int
    redis: RedisTarget
    storage: Storage | None = None
    start_timeout_seconds: int = DEFAULT_START_TIMEOUT_SECONDS
    warm_schedules: tuple[WarmSchedule, ...] = ()
    # Delete the session after this long without activity; None: never.
    expire_after_idle_seconds: int | None = None
    # Where KEDA reaches the operator's external-push scaler; None: no fast path.
    push_address: str | None = None
    push_tls: bool = False  # whether KEDA must dial it with TLS
    # A redis trigger on the processing list too (builders/scaledobject.py says when).
    processing_trigger: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


def parse_address(address: str, source: str) -> tuple[str, int]:
    """Split host:port; source names where the value came from, for the error."""
    bad = InvalidSession(
        f"{source} must be host:port (e.g. redis:6379 or [::1]:6379), got {address!r}"
    )
    if address.startswith("["):
        host, sep, rest = address[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise bad
        port_text = rest[1:]
    else:
        host, sep, port_text = address.rpartition(":")
        # An unbracketed IPv6 address has no unambiguous port.
        if not sep or ":" in host:
            raise bad
    if (
        not host
        or not (port_text.isascii() and port_text.isdigit())
        or not 1 <= int(port_text) <= 65535
    ):
        raise bad
    return host, int(port_text)


def plain(value: Any) -> Any:
    """Deep copy into dicts and lists, so manifests never alias kopf's body."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
