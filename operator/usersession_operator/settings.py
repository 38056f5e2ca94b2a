"""Operator settings: environment variables, overridable by command-line flags.

Defaults here are what a plain UserSession (only userId and image) falls back to,
so a platform team sets the Redis address and Secret once, for every session.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from usersession_operator.observability import LOG_FORMATS
from usersession_operator.session.model import InvalidSession, parse_address
from usersession_operator.session.redisrefs import RedisDefaults, auth_defaults_from_env
from usersession_operator.session.spec import check_workload_defaults

ENV_PREFIX = "USERSESSION_"
S = TypeVar("S")


def with_flags(settings: S, args: argparse.Namespace, fields: Mapping[str, str]) -> S:
    """settings with each command-line flag that was given (flag -> field) replacing
    the environment's value; flags beat environment variables, for both commands."""
    overrides = {
        field: getattr(args, flag)
        for flag, field in fields.items()
        if getattr(args, flag) is not None
    }
    if "log_level" in overrides:
        overrides["log_level"] = str(overrides["log_level"]).upper()
    return dataclasses.replace(settings, **overrides)  # type: ignore[type-var]


def default_identity(env: Mapping[str, str] | None = None) -> str:
    """This replica's name in the leader Lease: the pod's name (the chart passes it
    through the downward API), else host and process, unique on one machine too."""
    env = os.environ if env is None else env
    return env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


def on_off(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0", ""):
        return False
    raise ValueError(f"{ENV_PREFIX}{name} must be on or off, got {text!r}")


@dataclass(frozen=True)
class LeaderElection:
    # Off unless asked for: a single operator started by hand or by the tests needs
    # no Lease; the Helm chart turns it on for its two replicas.
    enabled: bool = False
    lease_name: str = "usersession-operator"
    namespace: str = "default"  # the operator's own namespace in a pod (POD_NAMESPACE)
    identity: str = field(default_factory=default_identity)
    # client-go's usual timings (leadership/lease.py says what each means). A
    # longer lease rides out API server hiccups; a shorter one fails over sooner.
    lease_seconds: int = 10
    renew_every_seconds: float = 2.0
    renew_deadline_seconds: float = 8.0


@dataclass(frozen=True)
class PushEndpoints:
    """Where this replica, once it leads, publishes itself as the push Service's only
    endpoint (an EndpointSlice; see leadership/endpoints.py). Set by the Helm chart."""

    service: str  # the selector-less Service KEDA dials, and the EndpointSlice's name
    namespace: str  # the operator's own (POD_NAMESPACE)
    pod_ip: str  # this pod's address (POD_IP, from the downward API)
    pod_name: str | None = None  # named in the endpoint's targetRef when known


def push_endpoints_from_env(env: Mapping[str, str]) -> PushEndpoints | None:
    """None unless USERSESSION_PUSH_ENDPOINTS_SERVICE is set (by hand, in the tests and
    the local stack nothing is written); then POD_IP must be an IP address."""
    service = env.get(ENV_PREFIX + "PUSH_ENDPOINTS_SERVICE") or None
    if service is None:
        return None
    pod_ip = env.get("POD_IP") or ""
    try:
        ip = ipaddress.ip_address(pod_ip)
    except ValueError:
        ip = None
    # The API server refuses these in an EndpointSlice.
    if ip is None or ip.is_loopback or ip.is_link_local or ip.is_unspecified:
        raise ValueError(
            f"{ENV_PREFIX}PUSH_ENDPOINTS_SERVICE is set, so POD_IP must be this pod's IP "
            f"address (the chart sets it from status.podIP; not a loopback, link-local or "
            f"unspecified one), got {pod_ip!r}"
        )
    return PushEndpoints(
        service=service,
        namespace=env.get("POD_NAMESPACE") or "default",
        pod_ip=pod_ip,
        pod_name=env.get("POD_NAME") or None,
    )


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    redis: RedisDefaults = field(default_factory=RedisDefaults)
    # Where the operator itself reaches the default Redis, when that differs from
    # the in-cluster address given to KEDA and pods (e.g. a port-forward while
    # developing). The password always comes from the session's Secret.
    redis_operator_address: str | None = None
    poll_interval_seconds: float = 5.0
    # Sessions reconciled or finalized side by side. Each waits mostly on the API
    # server; more would queue more writes at once during a takeover, not finish sooner.
    workers: int = 16
    # The session count the operator's resources were sized for (0: not stated); past
    # it, a warning (runtime/budget.py). The chart sets it with the memory limit.
    capacity: int = 0
    # This replica's own Pod (POD_NAMESPACE, POD_NAME), when it runs in one: the
    # object its own events (past capacity, say) are about.
    pod: tuple[str, str] | None = None
    # How long the finalizer keeps retrying Redis cleanup before it gives up,
    # emits a Warning event naming the keys left behind, and lets deletion finish.
    cleanup_timeout_seconds: float = 600.0
    log_level: str = "INFO"
    # "text" for people, "json" (one object per line, with the session it is about)
    # for log pipelines.
    log_format: str = "text"
    # Loopback by default; the Helm chart sets 0.0.0.0 so the kubelet's probes
    # and Prometheus can reach the pod.
    listen_host: str = "127.0.0.1"
    liveness_port: int = 8080
    metrics_port: int = 9090
    # The fast-wake path: the port of the operator's KEDA external-push scaler
    # (gRPC; 0 turns it off), and the address KEDA dials to reach it (the
    # operator's Service in a cluster). ScaledObjects get the external-push
    # trigger only when push_address is set; their redis triggers stay either way.
    push_port: int = 0
    push_address: str | None = None
    # A directory holding tls.crt and tls.key (a kubernetes.io/tls Secret mounted
    # as files): the push server then speaks TLS, and ScaledObjects ask KEDA for it.
    # KEDA verifies the certificate against its trusted CAs (its --ca-dir).
    push_tls_dir: str | None = None
    # With it, the leader writes the push Service's endpoints itself (the Service
    # has no selector, so KEDA reaches the leader and never a standby).
    push_endpoints: PushEndpoints | None = None
    # "auto": ScaledObjects watch the processing list with a redis trigger of their
    # own only without the push path (which reports work in flight already);
    # "always": with it too (two Redis clients of KEDA's per session).
    processing_trigger: str = "auto"
    leader_election: LeaderElection = field(default_factory=LeaderElection)
    # spec.workload fields every session gets unless it sets its own (which wins;
    # the security contexts merge key by key): session/model.WORKLOAD_DEFAULT_FIELDS.
    workload_defaults: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Refuse settings that would fail every session (raises InvalidSession)."""
        if self.workers < 1:
            raise InvalidSession(f"USERSESSION_WORKERS must be at least 1, got {self.workers}")
        if self.processing_trigger not in ("auto", "always"):
            raise InvalidSession(
                "USERSESSION_PROCESSING_TRIGGER must be auto or always, "
                f"got {self.processing_trigger!r}"
            )
        election = self.leader_election
        if not 0 < election.renew_every_seconds < election.renew_deadline_seconds:
            raise InvalidSession(
                "USERSESSION_LEADER_ELECTION_RENEW_EVERY_SECONDS must be more than 0 and "
                "less than USERSESSION_LEADER_ELECTION_RENEW_DEADLINE_SECONDS"
            )
        if not election.renew_deadline_seconds < election.lease_seconds:
            # The leader must have stopped before a standby may take over.
            raise InvalidSession(
                "USERSESSION_LEADER_ELECTION_RENEW_DEADLINE_SECONDS must be less than "
                "USERSESSION_LEADER_ELECTION_LEASE_SECONDS"
            )
        if self.log_format not in LOG_FORMATS:
            raise InvalidSession(
                f"USERSESSION_LOG_FORMAT must be text or json, got {self.log_format!r}"
            )
        if self.capacity < 0:
            raise InvalidSession(f"USERSESSION_CAPACITY must be 0 or more, got {self.capacity}")
        parse_address(self.redis.address, "USERSESSION_REDIS_ADDRESS")
        check_workload_defaults(self.workload_defaults, "USERSESSION_WORKLOAD_DEFAULTS")
        if self.push_address:
            parse_address(self.push_address, "USERSESSION_PUSH_ADDRESS")
        if self.redis_operator_address:
            parse_address(self.redis_operator_address, "USERSESSION_REDIS_OPERATOR_ADDRESS")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Read USERSESSION_* variables; a malformed one raises ValueError naming it."""
        env = os.environ if env is None else env

        def get(name: str, default: object) -> str:
            return env.get(ENV_PREFIX + name) or str(default)

        def number(name: str, default: float, kind: type[int] | type[float]) -> Any:
            text = get(name, default)
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{name} must be a number, got {text!r}") from None

        def json_object(name: str) -> dict[str, Any]:
            text = get(name, "{}")
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"{ENV_PREFIX}{name} is not JSON: {error}") from None
            if not isinstance(value, dict):
                raise ValueError(f"{ENV_PREFIX}{name} must be a JSON object")
            return value

        defaults = cls()
        redis = RedisDefaults(
            address=get("REDIS_ADDRESS", defaults.redis.address),
            database=number("REDIS_DATABASE", defaults.redis.database, int),
            secret_name=get("REDIS_SECRET_NAME", defaults.redis.secret_name),
            secret_key=get("REDIS_SECRET_KEY", defaults.redis.secret_key),
            auth=auth_defaults_from_env(lambda name: env.get(ENV_PREFIX + name), ENV_PREFIX),
        )
        namespaces = tuple(n.strip() for n in get("NAMESPACES", "").split(",") if n.strip())
        leader_election = LeaderElection(
            enabled=on_off("LEADER_ELECTION", get("LEADER_ELECTION", "off")),
            lease_name=get("LEADER_ELECTION_LEASE", defaults.leader_election.lease_name),
            namespace=get(
                "LEADER_ELECTION_NAMESPACE",
                env.get("POD_NAMESPACE") or defaults.leader_election.namespace,
            ),
            identity=default_identity(env),
            lease_seconds=number(
                "LEADER_ELECTION_LEASE_SECONDS", defaults.leader_election.lease_seconds, int
            ),
            renew_every_seconds=number(
                "LEADER_ELECTION_RENEW_EVERY_SECONDS",
                defaults.leader_election.renew_every_seconds,
                float,
            ),
            renew_deadline_seconds=number(
                "LEADER_ELECTION_RENEW_DEADLINE_SECONDS",
                defaults.leader_election.renew_deadline_seconds,
                float,
            ),
        )
        return cls(
            namespaces=namespaces,
            redis=redis,
            redis_operator_address=env.get(ENV_PREFIX + "REDIS_OPERATOR_ADDRESS") or None,
            poll_interval_seconds=number("POLL_INTERVAL", defaults.poll_interval_seconds, float),
            workers=number("WORKERS", defaults.workers, int),
            capacity=number("CAPACITY", defaults.capacity, int),
            pod=(
                (env["POD_NAMESPACE"], env["POD_NAME"])
                if env.get("POD_NAMESPACE") and env.get("POD_NAME")
                else None
            ),
            cleanup_timeout_seconds=number(
                "CLEANUP_TIMEOUT", defaults.cleanup_timeout_seconds, float
            ),
            log_level=get("LOG_LEVEL", defaults.log_level).upper(),
            log_format=get("LOG_FORMAT", defaults.log_format).lower(),
            listen_host=get("LISTEN_HOST", defaults.listen_host),
            liveness_port=number("LIVENESS_PORT", defaults.liveness_port, int),
            metrics_port=number("METRICS_PORT", defaults.metrics_port, int),
            push_port=number("PUSH_PORT", defaults.push_port, int),
            push_address=env.get(ENV_PREFIX + "PUSH_ADDRESS") or None,
            push_tls_dir=env.get(ENV_PREFIX + "PUSH_TLS_DIR") or None,
            push_endpoints=push_endpoints_from_env(env),
            processing_trigger=get("PROCESSING_TRIGGER", defaults.processing_trigger).lower(),
            leader_election=leader_election,
            workload_defaults=json_object("WORKLOAD_DEFAULTS"),
        )
