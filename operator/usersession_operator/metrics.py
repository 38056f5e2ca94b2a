"""Prometheus metrics of the operator. Labels never carry user data or secrets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from usersession_operator.builders import CHILD_KINDS
from usersession_operator.observability import register_process_metrics
from usersession_operator.session.model import Phase

REGISTRY = CollectorRegistry(auto_describe=True)
# process_resident_memory_bytes, process_cpu_seconds_total, ... and usersession_build_info.
register_process_metrics(REGISTRY, "usersession")

SESSIONS = Gauge("usersession_sessions", "UserSessions by phase", ["phase"], registry=REGISTRY)
QUEUE_DEPTH = Gauge(
    "usersession_queue_depth",
    "Messages waiting across all sessions' queues (last poll)",
    registry=REGISTRY,
)
PROCESSING_DEPTH = Gauge(
    "usersession_processing_depth",
    "Messages in flight (taken by workers, not yet handled) across all sessions (last poll)",
    registry=REGISTRY,
)
# The same two under their old names, which broke Prometheus' rule that _total
# names a counter. Kept for one release so dashboards and alerts can move over.
QUEUE_DEPTH_DEPRECATED = Gauge(
    "usersession_queue_depth_total",
    "Deprecated: use usersession_queue_depth (removed in the next release)",
    registry=REGISTRY,
)
PROCESSING_DEPTH_DEPRECATED = Gauge(
    "usersession_processing_depth_total",
    "Deprecated: use usersession_processing_depth (removed in the next release)",
    registry=REGISTRY,
)
RECONCILES = Counter(
    "usersession_reconcile_total",
    "Reconciliations of a UserSession's children",
    ["result"],
    registry=REGISTRY,
)
RECONCILE_SECONDS = Histogram(
    "usersession_reconcile_duration_seconds",
    "Time to apply a UserSession's children",
    registry=REGISTRY,
)
DRIFT_RESTORES = Counter(
    "usersession_drift_restores_total",
    "Children re-applied after a change or deletion by someone else",
    ["kind"],
    registry=REGISTRY,
)
STATUS_PATCHES = Counter(
    "usersession_status_patches_total",
    "Status writes (only made when something changed)",
    registry=REGISTRY,
)
REDIS_POLL_SECONDS = Histogram(
    "usersession_redis_poll_duration_seconds",
    "Time to read all queue depths in one poll cycle",
    registry=REGISTRY,
)
REDIS_POLL_ERRORS = Counter(
    "usersession_redis_poll_errors_total",
    "Sessions whose queue depth could not be read in a poll cycle",
    registry=REGISTRY,
)
CLEANUPS = Counter(
    "usersession_redis_cleanup_total", "Finalizer Redis cleanups", ["result"], registry=REGISTRY
)
EXPIRED = Counter(
    "usersession_expired_total",
    "Sessions deleted after spec.expireAfterIdleSeconds without activity",
    registry=REGISTRY,
)
PUSH_STREAMS = Gauge(
    "usersession_push_streams",
    "KEDA's open fast-wake streams (one per ScaledObject while KEDA is connected)",
    registry=REGISTRY,
)
KNOWN_SESSIONS = Gauge(
    "usersession_known_sessions",
    "UserSessions the operator holds in memory (all it watches, in any phase)",
    registry=REGISTRY,
)
CAPACITY = Gauge(
    "usersession_capacity_sessions",
    "The session count this operator is sized for (USERSESSION_CAPACITY; 0: not stated)",
    registry=REGISTRY,
)
MEMORY_LIMIT = Gauge(
    "usersession_memory_limit_bytes",
    "The operator's memory limit (its cgroup, or the chart's USERSESSION_MEMORY_LIMIT); "
    "absent when it has none",
    registry=REGISTRY,
)
WORK_QUEUE = Gauge(
    "usersession_work_queue_sessions",
    "Sessions waiting for a worker to reconcile or finalize them (at the last poll)",
    registry=REGISTRY,
)
LEADER = Gauge(
    "usersession_leader",
    "1 while this replica is the active one (holds the leader Lease, or runs without "
    "leader election), 0 while it waits as a standby",
    registry=REGISTRY,
)

PHASES = tuple(Phase)
WAKE_SECONDS = Histogram(
    "usersession_wake_duration_seconds",
    "From work first seen on a sleeping session (or its scale-up, if first) to its pod Ready",
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120),
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "usersession_event_loop_lag_seconds",
    "How late a 0.1 s sleeper on the operator's event loop wakes: how long the loop was held",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)

# Every known label value exists from the start, at zero: a counter series that
# first appears at 1 has no earlier sample, and rate() never counts that first
# increment (the first failed reconcile, say), so alerts and dashboards miss it.
for _result in ("ok", "error", "invalid"):
    RECONCILES.labels(_result)
for _result in ("ok", "retry", "abandoned"):
    CLEANUPS.labels(_result)
for _child in CHILD_KINDS:
    DRIFT_RESTORES.labels(_child.kind)


def set_depths(queued: int, in_flight: int) -> None:
    """Both depth gauges, under the current and the deprecated names."""
    for gauge in (QUEUE_DEPTH, QUEUE_DEPTH_DEPRECATED):
        gauge.set(queued)
    for gauge in (PROCESSING_DEPTH, PROCESSING_DEPTH_DEPRECATED):
        gauge.set(in_flight)
