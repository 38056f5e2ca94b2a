"""The phase and the Ready reason: what a session does, and whether the next message wakes it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from support.statuses import (
    CHILDREN,
    NAME,
    NAMESPACE,
    NOW,
    QUEUE,
    SCENARIOS,
    as_served,
    condition,
    deployment,
    observe,
    pod,
    scaled_object,
    ts,
)
from usersession_operator.session.model import Phase
from usersession_operator.status.compute import (
    ACTIVITY_RESOLUTION,
    compute_status,
    status_patch,
)
from usersession_operator.status.conditions import (
    REDIS_UNREACHABLE,
    SCALER_FAILED,
    SCALER_NOT_READY,
    new_warning,
)
from usersession_operator.status.observation import Observation

# -- phases -------------------------------------------------------------------


def test_healthy_idle_session_is_sleeping() -> None:
    status = compute_status(observe(), {})
    assert status["phase"] == Phase.SLEEPING
    assert status["replicas"] == 0
    assert status["readyReplicas"] == 0
    assert status["queueName"] == QUEUE
    assert status["queueDepth"] == 0
    assert status["children"] == CHILDREN
    assert "pod" not in status
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.SLEEPING)
    assert "scaled to zero" in ready["message"]


def test_deleting_session_is_terminating_whatever_else_is_wrong() -> None:
    obs = observe(
        deleting=True,
        reconcile_error="apply failed",
        deployment_=None,
        pods=[pod(waiting="CrashLoopBackOff", ready=False)],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.TERMINATING
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", Phase.TERMINATING)


def test_reconcile_error_is_degraded_with_the_error_as_message() -> None:
    error = 'ScaledObject.keda.sh "alice" is invalid: spec.cooldownPeriod: must be >= 0'
    status = compute_status(observe(reconcile_error=error, deployment_=None), {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False",
        "ReconcileFailed",
        error,
    )


@pytest.mark.parametrize(
    ("missing", "listed"),
    [
        ({"deployment_"}, "Deployment"),
        ({"scaled_object_"}, "ScaledObject"),
        ({"trigger_authentication_"}, "TriggerAuthentication"),
        ({"deployment_", "trigger_authentication_"}, "Deployment, TriggerAuthentication"),
        (
            {"deployment_", "scaled_object_", "trigger_authentication_"},
            "Deployment, ScaledObject, TriggerAuthentication",
        ),
    ],
)
def test_missing_children_are_pending_and_named(missing: set[str], listed: str) -> None:
    status = compute_status(observe(**dict.fromkeys(missing)), {})
    assert status["phase"] == Phase.PENDING
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildrenMissing")
    assert ready["message"] == f"waiting for {listed} to exist"


def test_pending_without_deployment_reports_zero_replicas() -> None:
    status = compute_status(observe(deployment_=None), {})
    assert (status["replicas"], status["readyReplicas"]) == (0, 0)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("CrashLoopBackOff", "back-off 5m0s restarting failed container=session"),
        ("ImagePullBackOff", 'Back-off pulling image "registry.example.com/nope:1"'),
        ("ErrImagePull", "failed to pull and unpack image"),
        ("CreateContainerConfigError", 'secret "redis" not found'),
        ("InvalidImageName", 'Failed to apply default image tag "Bad Image"'),
    ],
)
def test_stuck_container_is_degraded_with_its_reason(reason: str, message: str) -> None:
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[
            pod(
                phase="Pending" if "Image" in reason else "Running",
                ready=False,
                waiting=reason,
                waiting_message=message,
            )
        ],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("False", reason, message)


def test_stuck_container_without_message_uses_the_reason() -> None:
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(ready=False, waiting="CrashLoopBackOff")],
    )
    ready = condition(compute_status(obs, {}), "Ready")
    assert (ready["reason"], ready["message"]) == ("CrashLoopBackOff", "CrashLoopBackOff")


def test_stuck_init_container_is_degraded() -> None:
    # An injected init container (a service mesh, a secrets agent) that cannot
    # start keeps the pod Pending for ever: that needs attention too.
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False, init_waiting="ImagePullBackOff")],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    assert condition(status, "Ready")["reason"] == "ImagePullBackOff"


def test_container_that_is_merely_starting_is_waking_not_degraded() -> None:
    obs = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False, waiting="ContainerCreating")],
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"] == {"name": f"{NAME}-5d8f7c9b6d-x7k2p", "phase": "Pending", "ready": False}


def test_failed_pod_is_degraded_with_its_message() -> None:
    evicted = pod(
        phase="Failed",
        ready=False,
        reason="Evicted",
        message="The node was low on resource: memory.",
    )
    status = compute_status(observe(deployment_=deployment(replicas=1), pods=[evicted]), {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["reason"], ready["message"]) == (
        "PodFailed",
        "The node was low on resource: memory.",
    )
    assert status["pod"]["phase"] == "Failed"


def test_failed_pod_without_message_names_the_pod() -> None:
    failed = pod("alice-5d8f7c9b6d-zzzzz", phase="Failed", ready=False)
    ready = condition(
        compute_status(observe(deployment_=deployment(replicas=1), pods=[failed]), {}), "Ready"
    )
    assert ready["message"] == "pod alice-5d8f7c9b6d-zzzzz failed"


def test_failed_pod_left_behind_at_zero_replicas_does_not_degrade_a_sleeping_session() -> None:
    # ReplicaSets never delete Failed (e.g. evicted) pods; they linger until pod GC.
    evicted = pod(phase="Failed", ready=False, reason="Evicted", message="low on memory")
    status = compute_status(observe(deployment_=deployment(replicas=0), pods=[evicted]), {})
    assert status["phase"] == Phase.SLEEPING
    assert condition(status, "Ready")["status"] == "True"


@pytest.mark.parametrize("order", [1, -1])
def test_replacement_speaks_for_the_session_not_the_evicted_pod(order: int) -> None:
    # Eviction and replacement often share a creationTimestamp second.
    evicted = pod("alice-old", phase="Failed", ready=False, created="2025-03-14T11:59:00Z")
    replacement = pod("alice-new", phase="Pending", ready=False, created="2025-03-14T11:59:00Z")
    obs = observe(deployment_=deployment(replicas=1), pods=[evicted, replacement][::order])
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"]["name"] == "alice-new"


def test_progress_deadline_exceeded_is_degraded() -> None:
    obs = observe(deployment_=deployment(replicas=1, progress_deadline_exceeded=True))
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_suspended_session() -> None:
    status = compute_status(observe(suspend=True), {})
    assert status["phase"] == Phase.SUSPENDED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", Phase.SUSPENDED)
    assert "spec.suspend" in ready["message"]


def test_suspended_but_crashing_is_degraded() -> None:
    obs = observe(
        suspend=True,
        deployment_=deployment(replicas=1),
        pods=[pod(ready=False, waiting="CrashLoopBackOff")],
    )
    assert compute_status(obs, {})["phase"] == Phase.DEGRADED


def test_ready_pod_is_running() -> None:
    running = pod("alice-5d8f7c9b6d-x7k2p")
    status = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[running], queue_depth=2), {}
    )
    assert status["phase"] == Phase.RUNNING
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert status["pod"] == {"name": "alice-5d8f7c9b6d-x7k2p", "phase": "Running", "ready": True}
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.RUNNING)
    assert "alice-5d8f7c9b6d-x7k2p" in ready["message"]


def test_scaled_up_without_a_pod_is_waking() -> None:
    status = compute_status(observe(deployment_=deployment(replicas=1), queue_depth=1), {})
    assert status["phase"] == Phase.WAKING
    assert status["replicas"] == 1
    assert "pod" not in status
    assert condition(status, "Ready")["status"] == "False"


def test_running_pod_that_is_not_ready_yet_is_waking() -> None:
    obs = observe(deployment_=deployment(replicas=1), pods=[pod(ready=False)])
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"]["ready"] is False


def test_terminating_pod_is_ignored() -> None:
    leaving = pod(deleting=True)  # still Ready while it shuts down
    status = compute_status(observe(deployment_=deployment(replicas=0), pods=[leaving]), {})
    assert status["phase"] == Phase.SLEEPING
    assert "pod" not in status


def test_terminating_ready_pod_does_not_hide_its_successor() -> None:
    leaving = pod("alice-old", deleting=True, created="2025-03-14T11:00:00Z")
    starting = pod("alice-new", phase="Pending", ready=False, created="2025-03-14T11:59:00Z")
    obs = observe(deployment_=deployment(replicas=1), pods=[leaving, starting])
    status = compute_status(obs, {})
    assert status["phase"] == Phase.WAKING
    assert status["pod"]["name"] == "alice-new"


def test_ready_pod_is_preferred_over_a_newer_unready_one() -> None:
    old_ready = pod("alice-a", created="2025-03-14T11:00:00Z")
    new_unready = pod("alice-b", ready=False, created="2025-03-14T11:59:00Z")
    status = compute_status(
        observe(deployment_=deployment(replicas=1, ready=1), pods=[new_unready, old_ready]), {}
    )
    assert status["phase"] == Phase.RUNNING
    assert status["pod"]["name"] == "alice-a"


# -- waking: Ready promises that the next message wakes the session ------------------

# Shaped like KEDA 2.21's message when it cannot build the redis scaler (wrong password).
KEDA_WRONGPASS = (
    "failed to ensure HPA is correctly created for ScaledObject: connection to redis "
    "failed: WRONGPASS invalid username-password pair or user is disabled."
)


def failing_scaler(message: str | None = KEDA_WRONGPASS) -> dict[str, Any]:
    return scaled_object("False", "ScaledObjectCheckFailed", message)


def test_sleeping_session_whose_scaler_fails_is_degraded_not_ready() -> None:
    status = compute_status(observe(scaled_object_=failing_scaler()), {})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", SCALER_FAILED)
    assert ready["message"] == f"KEDA cannot scale the session: {KEDA_WRONGPASS}"
    scaler = condition(status, "ScalerReady")
    assert (scaler["status"], scaler["reason"], scaler["message"]) == (
        "False",
        "ScaledObjectCheckFailed",
        KEDA_WRONGPASS,
    )


def test_running_session_whose_scaler_fails_is_degraded() -> None:
    # It will not be scaled down when idle, nor woken again once it is.
    obs = observe(
        deployment_=deployment(replicas=1, ready=1),
        pods=[pod()],
        scaled_object_=scaled_object(
            "False", "TriggerError", "Triggers defined in ScaledObject are not working correctly"
        ),
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.DEGRADED
    assert status["pod"]["ready"] is True
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", SCALER_FAILED)
    assert "Triggers defined in ScaledObject are not working correctly" in ready["message"]


def test_failing_scaler_without_a_message_still_says_why() -> None:
    obs = observe(scaled_object_=scaled_object("False", "ErrorScalingTarget", message=None))
    ready = condition(compute_status(obs, {}), "Ready")
    assert ready["reason"] == SCALER_FAILED
    assert ready["message"] == "KEDA cannot scale the session: ErrorScalingTarget"


def test_scaler_not_known_to_fail_does_not_degrade() -> None:
    # Unknown with a reason: KEDA runs the scale loop, only some triggers fail.
    obs = observe(
        scaled_object_=scaled_object("Unknown", "PartialTriggerError", "some triggers fail")
    )
    status = compute_status(obs, {})
    assert status["phase"] == Phase.SLEEPING


@pytest.mark.parametrize(
    ("ready", "reason"), [(None, None), ("Unknown", None)], ids=["not-reported", "not-judged"]
)
def test_asleep_before_keda_takes_the_scaled_object_on_is_not_ready(
    ready: str | None, reason: str | None
) -> None:
    # Nothing would wake the session yet: KEDA runs no scale loop for it.
    status = compute_status(observe(scaled_object_=scaled_object(ready, reason, None)), {})
    assert status["phase"] == Phase.PENDING
    ready_condition = condition(status, "Ready")
    assert (ready_condition["status"], ready_condition["reason"]) == ("False", SCALER_NOT_READY)
    assert "KEDA" in ready_condition["message"]


def test_a_ready_pod_is_running_before_keda_has_judged() -> None:
    # The pod is up, so the session handles messages whatever KEDA has yet to say.
    status = compute_status(
        observe(
            scaled_object_=scaled_object(None),
            deployment_=deployment(replicas=1, ready=1),
            pods=[pod("alice-5d8f7c9b6d-x7k2p")],
        ),
        {},
    )
    assert status["phase"] == Phase.RUNNING


def test_session_recovers_when_keda_reports_ready_again() -> None:
    later = NOW + dt.timedelta(minutes=4)
    failed = as_served(compute_status(observe(scaled_object_=failing_scaler()), {}))
    status = compute_status(observe(now=later), failed)
    assert status["phase"] == Phase.SLEEPING
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", Phase.SLEEPING)
    assert ready["lastTransitionTime"] == ts(later)
    assert condition(status, "ScalerReady")["status"] == "True"


def test_operator_unable_to_read_the_queue_is_degraded() -> None:
    error = "AuthenticationError: invalid username-password pair or user is disabled."
    status = compute_status(observe(queue_depth=None, redis_error=error), {"queueDepth": 2})
    assert status["phase"] == Phase.DEGRADED
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", REDIS_UNREACHABLE)
    assert ready["message"] == f"cannot read the queue: {error}"
    assert condition(status, "RedisReachable")["status"] == "False"
    assert status["queueDepth"] == 2


def test_session_recovers_when_the_queue_is_readable_again() -> None:
    failed = as_served(compute_status(observe(queue_depth=None, redis_error="timeout"), {}))
    status = compute_status(observe(queue_depth=0), failed)
    assert status["phase"] == Phase.SLEEPING
    assert condition(status, "Ready")["status"] == "True"


def test_failing_scaler_is_named_before_the_operators_own_redis_error() -> None:
    # KEDA is what wakes the session; its message is the one that explains why it will not.
    obs = observe(scaled_object_=failing_scaler(), queue_depth=None, redis_error="timeout")
    assert condition(compute_status(obs, {}), "Ready")["reason"] == SCALER_FAILED


@pytest.mark.parametrize(
    ("overrides", "phase", "reason"),
    [
        ({"suspend": True}, Phase.SUSPENDED, Phase.SUSPENDED),
        ({"deleting": True}, Phase.TERMINATING, Phase.TERMINATING),
        ({"reconcile_error": "apply failed"}, Phase.DEGRADED, "ReconcileFailed"),
        ({"deployment_": None}, Phase.PENDING, "ChildrenMissing"),
        (
            {
                "deployment_": deployment(replicas=1),
                "pods": [pod(ready=False, waiting="CrashLoopBackOff")],
            },
            Phase.DEGRADED,
            "CrashLoopBackOff",
        ),
        (
            {"deployment_": deployment(replicas=1, progress_deadline_exceeded=True)},
            Phase.DEGRADED,
            "ProgressDeadlineExceeded",
        ),
    ],
    ids=["suspended", "terminating", "reconcile-error", "children-missing", "stuck", "deadline"],
)
@pytest.mark.parametrize("failure", ["scaler", "redis"])
def test_other_states_take_precedence_over_scaler_and_redis_failures(
    overrides: dict[str, Any], phase: str, reason: str, failure: str
) -> None:
    if failure == "scaler":
        overrides = {"scaled_object_": failing_scaler(), **overrides}
    else:
        overrides = {"queue_depth": None, "redis_error": "timeout", **overrides}
    status = compute_status(observe(**overrides), {})
    assert status["phase"] == phase
    assert condition(status, "Ready")["reason"] == reason


def test_a_session_newly_unable_to_wake_deserves_one_warning() -> None:
    sleeping = as_served(compute_status(observe(), {}))
    failed = compute_status(observe(scaled_object_=failing_scaler()), sleeping)
    assert new_warning(sleeping, failed) == (
        SCALER_FAILED,
        f"KEDA cannot scale the session: {KEDA_WRONGPASS}",
    )
    # The next polls find it just as broken: no more events.
    later = compute_status(
        observe(scaled_object_=failing_scaler(), now=NOW + ACTIVITY_RESOLUTION), failed
    )
    assert new_warning(as_served(failed), later) is None


def test_a_session_created_broken_deserves_a_warning() -> None:
    failed = compute_status(observe(queue_depth=None, redis_error="timeout"), {})
    assert new_warning({}, failed) == (REDIS_UNREACHABLE, "cannot read the queue: timeout")


def test_a_new_reason_not_to_wake_deserves_a_new_warning() -> None:
    redis_down = as_served(compute_status(observe(queue_depth=None, redis_error="timeout"), {}))
    failed = compute_status(observe(scaled_object_=failing_scaler()), redis_down)
    warning = new_warning(redis_down, failed)
    assert warning is not None
    assert warning[0] == SCALER_FAILED


def test_a_spec_the_operator_could_not_apply_deserves_a_warning() -> None:
    failed = compute_status(observe(reconcile_error="422 Unprocessable Entity: bad"), {})
    assert new_warning({}, failed) == ("ReconcileFailed", "422 Unprocessable Entity: bad")


@pytest.mark.parametrize(
    "after",
    [observe(), observe(suspend=True, scaled_object_=failing_scaler())],
    ids=["healthy", "suspended"],
)
def test_other_statuses_deserve_no_warning_from_here(after: Observation) -> None:
    # Reconcile failures already reach kopf, which posts its own events for them.
    assert new_warning({}, compute_status(after, {})) is None


def test_recovery_deserves_no_warning() -> None:
    failed = as_served(compute_status(observe(scaled_object_=failing_scaler()), {}))
    assert new_warning(failed, compute_status(observe(), failed)) is None


@pytest.mark.parametrize("phase", list(SCENARIOS))
def test_ready_condition_is_true_only_when_running_or_sleeping(phase: str) -> None:
    status = compute_status(SCENARIOS[phase], {})
    assert status["phase"] == phase
    ready = condition(status, "Ready")
    if phase in (Phase.RUNNING, Phase.SLEEPING):
        assert (ready["status"], ready["reason"]) == ("True", phase)
    else:
        assert ready["status"] == "False"
    assert ready["message"]


# -- start timeout: a woken session that does not come up says why ------------------


def test_a_pod_still_starting_within_the_start_timeout_is_waking() -> None:
    starting = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(phase="Pending", ready=False)],  # created 120 s ago
        start_timeout_seconds=300,
    )
    assert compute_status(starting, {})["phase"] == "Waking"


def test_an_unschedulable_pod_past_the_start_timeout_is_degraded_with_the_schedulers_words() -> (
    None
):
    stuck = pod(phase="Pending", ready=False)
    stuck["status"]["conditions"][0] = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
    }
    status = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[stuck], start_timeout_seconds=60), {}
    )
    ready = condition(status, "Ready")
    assert (status["phase"], ready["status"], ready["reason"]) == (
        "Degraded",
        "False",
        "StartTimeout",
    )
    assert "not ready within 60s" in ready["message"]
    assert "unbound immediate PersistentVolumeClaims" in ready["message"]
    assert new_warning({}, status) == ("StartTimeout", ready["message"])
    # It stays so without a new message each poll (a write each poll), and with no new event.
    later = compute_status(
        observe(
            deployment_=deployment(replicas=1),
            pods=[stuck],
            start_timeout_seconds=60,
            now=NOW + dt.timedelta(minutes=5),
        ),
        status,
    )
    assert status_patch(status, later) is None
    assert new_warning(status, later) is None


def test_a_pod_failing_its_readiness_probe_past_the_start_timeout_says_so() -> None:
    unready = pod(ready=False)  # running, not ready
    status = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[unready], start_timeout_seconds=60), {}
    )
    assert "running but not ready" in condition(status, "Ready")["message"]


def test_no_pod_long_after_the_wake_names_the_replicasets_failure() -> None:
    failing = deployment(replicas=1)
    failing["status"]["conditions"].append(
        {
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": 'pods "alice-x" is forbidden: exceeded quota: pods',
        }
    )
    status = compute_status(
        observe(
            deployment_=failing,
            wake_started=NOW - dt.timedelta(seconds=400),
            start_timeout_seconds=300,
        ),
        {},
    )
    ready = condition(status, "Ready")
    assert ready["reason"] == "StartTimeout"
    assert "exceeded quota" in ready["message"]
    # Without a wake start or a pod there is no clock: Waking, not a guess.
    assert compute_status(observe(deployment_=deployment(replicas=1)), {})["phase"] == "Waking"


def test_a_timed_out_session_recovers_by_itself_when_its_pod_is_ready() -> None:
    late = observe(
        deployment_=deployment(replicas=1),
        pods=[pod(ready=False)],
        start_timeout_seconds=60,
    )
    degraded = compute_status(late, {})
    assert degraded["phase"] == "Degraded"
    ready = observe(deployment_=deployment(replicas=1, ready=1), pods=[pod()])
    assert compute_status(ready, degraded)["phase"] == "Running"


def test_the_end_of_activity_is_stamped_so_idle_time_counts_from_it() -> None:
    busy_earlier = {
        "queueDepth": 0,
        "processingDepth": 1,
        "lastActivityTime": "2025-03-14T11:59:30Z",
    }
    done = compute_status(observe(queue_depth=0, processing_depth=0), busy_earlier)
    assert done["lastActivityTime"] == ts(NOW)
    # Idle before and after: nothing new to say.
    idle = {"queueDepth": 0, "processingDepth": 0, "lastActivityTime": "2025-03-14T11:00:00Z"}
    still = compute_status(observe(queue_depth=0, processing_depth=0), idle)
    assert still["lastActivityTime"] == "2025-03-14T11:00:00Z"


# -- storage: the session's claim --------------------------------------------------


def _claim(phase: str | None, capacity: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if capacity:
        status["capacity"] = {"storage": capacity}
    return {"metadata": {"name": NAME, "namespace": NAMESPACE}, "status": status}


def test_a_bound_claim_is_reported_and_a_missing_one_keeps_the_session_pending() -> None:
    bound = compute_status(observe(claim_wanted=True, claim=_claim("Bound", "5Gi")), {})
    assert bound["phase"] == "Sleeping"
    assert bound["storage"] == {"claimName": NAME, "phase": "Bound", "capacity": "5Gi"}
    missing = compute_status(observe(claim_wanted=True, claim=None), {})
    assert (missing["phase"], condition(missing, "Ready")["reason"]) == (
        "Pending",
        "ChildrenMissing",
    )
    # A claim left behind by an earlier session, when this one wants none: not ours to report.
    assert "storage" not in compute_status(observe(claim=_claim("Bound")), {})


def test_a_claim_that_lost_its_volume_is_degraded() -> None:
    status = compute_status(observe(claim_wanted=True, claim=_claim("Lost")), {})
    assert (status["phase"], condition(status, "Ready")["reason"]) == ("Degraded", "StorageLost")


def test_a_pending_claim_is_fine_asleep_but_names_the_cause_when_a_wake_times_out() -> None:
    asleep = compute_status(observe(claim_wanted=True, claim=_claim("Pending")), {})
    assert asleep["phase"] == "Sleeping"  # WaitForFirstConsumer classes bind on first use
    stuck = pod(phase="Pending", ready=False)
    timed_out = compute_status(
        observe(
            claim_wanted=True,
            claim=_claim("Pending"),
            deployment_=deployment(replicas=1),
            pods=[stuck],
            start_timeout_seconds=60,
        ),
        {},
    )
    ready = condition(timed_out, "Ready")
    assert (timed_out["phase"], ready["reason"]) == ("Degraded", "StorageNotBound")
    assert ready["message"].startswith(f"claim {NAME} is not bound")


def test_a_pod_that_was_ready_gets_the_whole_start_timeout_from_when_it_stopped() -> None:
    was_ready = pod(ready=False, created="2025-03-14T10:00:00Z")  # two hours old
    for cond in was_ready["status"]["conditions"]:
        if cond["type"] == "Ready":
            cond["lastTransitionTime"] = "2025-03-14T11:59:00Z"  # unready for a minute
    status = compute_status(
        observe(deployment_=deployment(replicas=1), pods=[was_ready], start_timeout_seconds=300),
        {},
    )
    assert status["phase"] == "Waking"


# -- a sleeping session with work nobody scales up ------------------------------------


def test_work_waiting_past_the_start_timeout_on_a_sleeping_session_is_not_ready() -> None:
    # KEDA down, or not acting on this ScaledObject: Ready promised the next message
    # wakes it, and nothing did.
    waited = observe(queue_depth=1, wake_started=NOW - dt.timedelta(seconds=301))
    status = compute_status(waited, {})
    assert status["phase"] == "Degraded"
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WakeTimeout")
    assert "300s" in ready["message"] and "KEDA" in ready["message"]
    assert new_warning({}, status) == ("WakeTimeout", ready["message"])


def test_work_in_flight_counts_and_a_short_wait_is_still_a_wake_on_its_way() -> None:
    stranded = observe(
        queue_depth=0, processing_depth=1, wake_started=NOW - dt.timedelta(seconds=301)
    )
    assert compute_status(stranded, {})["phase"] == "Degraded"
    fresh = observe(queue_depth=1, wake_started=NOW - dt.timedelta(seconds=10))
    assert compute_status(fresh, {})["phase"] == "Sleeping"


def test_messages_at_or_below_the_activation_length_wait_asleep_and_ready() -> None:
    below = observe(queue_depth=2, activation_length=2, wake_started=NOW - dt.timedelta(hours=1))
    status = compute_status(below, {})
    assert (status["phase"], condition(status, "Ready")["status"]) == ("Sleeping", "True")


def _trigger_error() -> dict[str, Any]:
    so = scaled_object()
    so["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "False",
            "reason": "TriggerError",
            "message": "Triggers defined in ScaledObject are not working correctly",
        }
    ]
    return so


def test_keda_unable_to_reach_the_push_server_alone_still_wakes_the_session() -> None:
    # A failover: the push trigger fails for seconds; the queue trigger still wakes.
    status = compute_status(observe(scaled_object_=_trigger_error(), push_trigger=True), {})
    assert (status["phase"], condition(status, "Ready")["status"]) == ("Sleeping", "True")
    scaler = condition(status, "ScalerReady")
    assert (scaler["status"], scaler["reason"]) == ("False", "TriggerError")


def test_a_trigger_error_without_the_push_path_or_with_redis_failing_is_degraded() -> None:
    plain = compute_status(observe(scaled_object_=_trigger_error()), {})
    assert condition(plain, "Ready")["reason"] == SCALER_FAILED
    down = observe(
        scaled_object_=_trigger_error(), push_trigger=True, queue_depth=None, redis_error="down"
    )
    assert compute_status(down, {})["phase"] == "Degraded"
