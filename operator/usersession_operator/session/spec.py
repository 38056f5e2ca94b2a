"""Reading a UserSession body (as kopf or the API server returns it) into a Session.

Every field is checked and defaulted here, with the schema's defaults and the
operator's defaults (its settings), so the rest of the code works on typed values only. A
body the schema would refuse raises InvalidSession with the field's path: the
message is meant for the session's owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usersession_operator.session import fields
from usersession_operator.session.keys import default_queue_name
from usersession_operator.session.model import (
    ACCESS_MODES,
    DEFAULT_ACCESS_MODE,
    DEFAULT_ACTIVATION_LENGTH,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MOUNT_PATH,
    DEFAULT_POLLING_INTERVAL_SECONDS,
    DEFAULT_START_TIMEOUT_SECONDS,
    DEFAULT_TARGET_LENGTH,
    DEFAULT_TERMINATION_GRACE_SECONDS,
    LAYERED_WORKLOAD_FIELDS,
    MAX_TERMINATION_GRACE_SECONDS,
    RESERVED_ENV_NAMES,
    WEEKDAYS,
    WORKLOAD_DEFAULT_FIELDS,
    Defaults,
    InvalidSession,
    Session,
    Storage,
    WarmSchedule,
    Workload,
)
from usersession_operator.session.redisspec import redis_target


def session_from_body(body: Mapping[str, Any], defaults: Defaults) -> Session:
    """Read a UserSession object (as kopf or the API returns it) into a Session."""
    metadata = fields.mapping(body.get("metadata"), "metadata")
    spec = fields.mapping(body.get("spec"), "spec")
    namespace = fields.text(metadata, "namespace", "metadata.namespace")
    name = fields.text(metadata, "name", "metadata.name")
    queue = fields.mapping(spec.get("queue"), "spec.queue")
    scaling = fields.mapping(spec.get("scaling"), "spec.scaling")
    return Session(
        namespace=namespace,
        name=name,
        # Empty only for objects that were never stored; owner references refuse it.
        uid=str(metadata.get("uid") or ""),
        generation=fields.integer(metadata, "generation", 0, "metadata.generation", minimum=0),
        user_id=fields.text(spec, "userId", "spec.userId"),
        suspend=fields.boolean(spec, "suspend", "spec.suspend"),
        workload=_workload(
            with_workload_defaults(
                fields.mapping(spec.get("workload"), "spec.workload"), defaults.workload_defaults
            )
        ),
        queue_name=fields.optional_text(queue, "name", "spec.queue.name")
        or default_queue_name(namespace, name),
        activation_length=fields.integer(
            queue, "activationLength", DEFAULT_ACTIVATION_LENGTH, "spec.queue.activationLength", 0
        ),
        target_length=fields.integer(
            queue, "targetLength", DEFAULT_TARGET_LENGTH, "spec.queue.targetLength", 1
        ),
        idle_timeout_seconds=fields.integer(
            scaling,
            "idleTimeoutSeconds",
            DEFAULT_IDLE_TIMEOUT_SECONDS,
            "spec.scaling.idleTimeoutSeconds",
            1,
        ),
        polling_interval_seconds=fields.integer(
            scaling,
            "pollingIntervalSeconds",
            DEFAULT_POLLING_INTERVAL_SECONDS,
            "spec.scaling.pollingIntervalSeconds",
            1,
        ),
        redis=redis_target(fields.mapping(spec.get("redis"), "spec.redis"), defaults),
        storage=_storage(spec.get("storage")),
        start_timeout_seconds=fields.integer(
            scaling,
            "startTimeoutSeconds",
            DEFAULT_START_TIMEOUT_SECONDS,
            "spec.scaling.startTimeoutSeconds",
            1,
        ),
        warm_schedules=tuple(
            _warm_schedule(fields.plain_dict(item, "spec.scaling.warmSchedules[]"))
            for item in fields.listing(scaling, "warmSchedules", "spec.scaling.warmSchedules")
        ),
        expire_after_idle_seconds=(
            fields.integer(spec, "expireAfterIdleSeconds", 0, "spec.expireAfterIdleSeconds", 1)
            if spec.get("expireAfterIdleSeconds") is not None
            else None
        ),
        push_address=defaults.push_address,
        push_tls=defaults.push_tls_dir is not None,
        processing_trigger=defaults.processing_trigger == "always" or not defaults.push_address,
    )


def _storage(value: Any) -> Storage | None:
    if value is None:
        return None
    path = "spec.storage"
    storage = fields.mapping(value, path)
    mount_path = (
        fields.optional_text(storage, "mountPath", f"{path}.mountPath") or DEFAULT_MOUNT_PATH
    )
    if not mount_path.startswith("/"):
        raise InvalidSession(f"{path}.mountPath must be an absolute path")
    modes = tuple(fields.listing(storage, "accessModes", f"{path}.accessModes")) or (
        DEFAULT_ACCESS_MODE,
    )
    if any(m not in ACCESS_MODES for m in modes):
        raise InvalidSession(f"{path}.accessModes: each must be one of {', '.join(ACCESS_MODES)}")
    policy = fields.optional_text(storage, "deletionPolicy", f"{path}.deletionPolicy") or "Delete"
    if policy not in ("Delete", "Retain"):
        raise InvalidSession(f"{path}.deletionPolicy must be Delete or Retain")
    return Storage(
        size=fields.text(storage, "size", f"{path}.size"),
        mount_path=mount_path,
        access_modes=modes,
        storage_class_name=fields.optional_text(
            storage, "storageClassName", f"{path}.storageClassName"
        ),
        deletion_policy=policy,
    )


def _warm_schedule(item: Mapping[str, Any]) -> WarmSchedule:
    path = "spec.scaling.warmSchedules[]"
    start, end = _clock(item, "start", path), _clock(item, "end", path)
    if end <= start:
        raise InvalidSession(f"{path}: end must be after start on the same day")
    days = tuple(fields.listing(item, "days", f"{path}.days")) or WEEKDAYS
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown:
        raise InvalidSession(f"{path}.days: unknown day {unknown[0]!r} (use {', '.join(WEEKDAYS)})")
    return WarmSchedule(fields.text(item, "timezone", f"{path}.timezone"), start, end, days)


def _clock(item: Mapping[str, Any], key: str, path: str) -> str:
    value = fields.text(item, key, f"{path}.{key}")
    hours, sep, minutes = value.partition(":")
    if not (sep and len(hours) == len(minutes) == 2 and (hours + minutes).isdigit()):
        raise InvalidSession(f"{path}.{key} must be a time as HH:MM, got {value!r}")
    if int(hours) > 23 or int(minutes) > 59:
        raise InvalidSession(f"{path}.{key} must be a time as HH:MM, got {value!r}")
    return value


def with_workload_defaults(
    workload: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Mapping[str, Any]:
    """spec.workload over the operator's defaults: a field the session sets wins
    whole, the security contexts key by key (model.WORKLOAD_DEFAULT_FIELDS)."""
    if not defaults:
        return workload
    merged = {**defaults, **workload}
    for key in LAYERED_WORKLOAD_FIELDS:
        if key in defaults and key in workload:
            own = fields.mapping(workload[key], f"spec.workload.{key}")
            merged[key] = {**defaults[key], **own}
    return merged


def check_workload_defaults(defaults: Mapping[str, Any], name: str) -> None:
    """Refuse operator defaults (named `name`) that no session could be built with."""
    unknown = sorted(set(defaults) - set(WORKLOAD_DEFAULT_FIELDS))
    if unknown:
        raise InvalidSession(
            f"{name} may set only {', '.join(WORKLOAD_DEFAULT_FIELDS)}; not {', '.join(unknown)}"
        )
    try:
        _workload({**defaults, "image": "any"})
    except InvalidSession as error:
        raise InvalidSession(f"{name}: {error}".replace("spec.workload.", "")) from None


def _workload(workload: Mapping[str, Any]) -> Workload:
    env = tuple(
        fields.plain_dict(item, "spec.workload.env[]")
        for item in fields.listing(workload, "env", "spec.workload.env")
    )
    reserved = sorted({str(item.get("name")) for item in env} & RESERVED_ENV_NAMES)
    if reserved:
        raise InvalidSession(
            f"spec.workload.env sets {', '.join(reserved)}, which the operator sets itself"
        )
    return Workload(
        image=fields.text(workload, "image", "spec.workload.image"),
        image_pull_policy=fields.optional_text(
            workload, "imagePullPolicy", "spec.workload.imagePullPolicy"
        ),
        command=tuple(
            str(arg) for arg in fields.listing(workload, "command", "spec.workload.command")
        ),
        args=tuple(str(arg) for arg in fields.listing(workload, "args", "spec.workload.args")),
        env=env,
        resources=fields.dictionary(workload, "resources", "spec.workload.resources"),
        node_selector=fields.dictionary(workload, "nodeSelector", "spec.workload.nodeSelector"),
        tolerations=tuple(
            fields.plain_dict(item, "spec.workload.tolerations[]")
            for item in fields.listing(workload, "tolerations", "spec.workload.tolerations")
        ),
        service_account_name=fields.optional_text(
            workload, "serviceAccountName", "spec.workload.serviceAccountName"
        ),
        pod_labels=fields.dictionary(workload, "podLabels", "spec.workload.podLabels"),
        pod_annotations=fields.dictionary(
            workload, "podAnnotations", "spec.workload.podAnnotations"
        ),
        termination_grace_period_seconds=fields.integer(
            workload,
            "terminationGracePeriodSeconds",
            DEFAULT_TERMINATION_GRACE_SECONDS,
            "spec.workload.terminationGracePeriodSeconds",
            0,
            maximum=MAX_TERMINATION_GRACE_SECONDS,
        ),
        security_context=fields.dictionary(
            workload, "securityContext", "spec.workload.securityContext"
        ),
        pod_security_context=fields.dictionary(
            workload, "podSecurityContext", "spec.workload.podSecurityContext"
        ),
        affinity=fields.dictionary(workload, "affinity", "spec.workload.affinity"),
        image_pull_secrets=tuple(
            fields.text(
                fields.mapping(item, "spec.workload.imagePullSecrets[]"),
                "name",
                "spec.workload.imagePullSecrets[].name",
            )
            for item in fields.listing(
                workload, "imagePullSecrets", "spec.workload.imagePullSecrets"
            )
        ),
        priority_class_name=fields.optional_text(
            workload, "priorityClassName", "spec.workload.priorityClassName"
        ),
    )
