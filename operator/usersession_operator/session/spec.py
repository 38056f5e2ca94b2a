"""Reading a UserSession body (as kopf or the API server returns it) into a Session.

Every field is checked and defaulted here, with the schema's defaults and the
operator's settings, so the rest of the code works on typed values only. A
body the schema would refuse raises InvalidSession with the field's path: the
message is meant for the session's owner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from usersession_operator.session.model import (
    ACCESS_MODES,
    DEFAULT_ACCESS_MODE,
    DEFAULT_ACTIVATION_LENGTH,
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MOUNT_PATH,
    DEFAULT_POLLING_INTERVAL_SECONDS,
    DEFAULT_SECRET_KEY,
    DEFAULT_START_TIMEOUT_SECONDS,
    DEFAULT_TARGET_LENGTH,
    DEFAULT_TERMINATION_GRACE_SECONDS,
    MAX_TERMINATION_GRACE_SECONDS,
    RESERVED_ENV_NAMES,
    WEEKDAYS,
    InvalidSession,
    RedisTarget,
    SecretKeyRef,
    Session,
    Storage,
    WarmSchedule,
    Workload,
    default_queue_name,
    parse_address,
    plain,
)
from usersession_operator.session.redisrefs import (
    CONFIG_MAP,
    DEFAULT_CA_KEY,
    DEFAULT_CERT_KEY,
    DEFAULT_KEY_KEY,
    DEFAULT_USERNAME_KEY,
    SECRET,
    KeyRef,
    RedisTls,
)
from usersession_operator.settings import OperatorSettings


def check_settings(settings: OperatorSettings) -> None:
    """Refuse operator settings that would fail every session (raises InvalidSession)."""
    parse_address(settings.redis.address, "USERSESSION_REDIS_ADDRESS")
    if settings.push_address:
        parse_address(settings.push_address, "USERSESSION_PUSH_ADDRESS")
    if settings.redis_operator_address:
        parse_address(settings.redis_operator_address, "USERSESSION_REDIS_OPERATOR_ADDRESS")


def session_from_body(body: Mapping[str, Any], settings: OperatorSettings) -> Session:
    """Read a UserSession object (as kopf or the API returns it) into a Session."""
    metadata = _mapping(body.get("metadata"), "metadata")
    spec = _mapping(body.get("spec"), "spec")
    namespace = _text(metadata, "namespace", "metadata.namespace")
    name = _text(metadata, "name", "metadata.name")
    queue = _mapping(spec.get("queue"), "spec.queue")
    scaling = _mapping(spec.get("scaling"), "spec.scaling")
    return Session(
        namespace=namespace,
        name=name,
        # Empty only for objects that were never stored; owner references refuse it.
        uid=str(metadata.get("uid") or ""),
        generation=_int(metadata, "generation", 0, "metadata.generation", minimum=0),
        user_id=_text(spec, "userId", "spec.userId"),
        suspend=_bool(spec, "suspend", "spec.suspend"),
        workload=_workload(_mapping(spec.get("workload"), "spec.workload")),
        queue_name=_optional_text(queue, "name", "spec.queue.name")
        or default_queue_name(namespace, name),
        activation_length=_int(
            queue, "activationLength", DEFAULT_ACTIVATION_LENGTH, "spec.queue.activationLength", 0
        ),
        target_length=_int(
            queue, "targetLength", DEFAULT_TARGET_LENGTH, "spec.queue.targetLength", 1
        ),
        idle_timeout_seconds=_int(
            scaling,
            "idleTimeoutSeconds",
            DEFAULT_IDLE_TIMEOUT_SECONDS,
            "spec.scaling.idleTimeoutSeconds",
            1,
        ),
        polling_interval_seconds=_int(
            scaling,
            "pollingIntervalSeconds",
            DEFAULT_POLLING_INTERVAL_SECONDS,
            "spec.scaling.pollingIntervalSeconds",
            1,
        ),
        redis=_redis(_mapping(spec.get("redis"), "spec.redis"), settings),
        storage=_storage(spec.get("storage")),
        start_timeout_seconds=_int(
            scaling,
            "startTimeoutSeconds",
            DEFAULT_START_TIMEOUT_SECONDS,
            "spec.scaling.startTimeoutSeconds",
            1,
        ),
        warm_schedules=tuple(
            _warm_schedule(_plain_dict(item, "spec.scaling.warmSchedules[]"))
            for item in _list(scaling, "warmSchedules", "spec.scaling.warmSchedules")
        ),
        expire_after_idle_seconds=(
            _int(spec, "expireAfterIdleSeconds", 0, "spec.expireAfterIdleSeconds", 1)
            if spec.get("expireAfterIdleSeconds") is not None
            else None
        ),
        push_address=settings.push_address,
        push_tls=settings.push_tls_dir is not None,
    )


def _storage(value: Any) -> Storage | None:
    if value is None:
        return None
    path = "spec.storage"
    storage = _mapping(value, path)
    mount_path = _optional_text(storage, "mountPath", f"{path}.mountPath") or DEFAULT_MOUNT_PATH
    if not mount_path.startswith("/"):
        raise InvalidSession(f"{path}.mountPath must be an absolute path")
    modes = tuple(_list(storage, "accessModes", f"{path}.accessModes")) or (DEFAULT_ACCESS_MODE,)
    if any(m not in ACCESS_MODES for m in modes):
        raise InvalidSession(f"{path}.accessModes: each must be one of {', '.join(ACCESS_MODES)}")
    policy = _optional_text(storage, "deletionPolicy", f"{path}.deletionPolicy") or "Delete"
    if policy not in ("Delete", "Retain"):
        raise InvalidSession(f"{path}.deletionPolicy must be Delete or Retain")
    return Storage(
        size=_text(storage, "size", f"{path}.size"),
        mount_path=mount_path,
        access_modes=modes,
        storage_class_name=_optional_text(storage, "storageClassName", f"{path}.storageClassName"),
        deletion_policy=policy,
    )


def _warm_schedule(item: Mapping[str, Any]) -> WarmSchedule:
    path = "spec.scaling.warmSchedules[]"
    start, end = _clock(item, "start", path), _clock(item, "end", path)
    if end <= start:
        raise InvalidSession(f"{path}: end must be after start on the same day")
    days = tuple(_list(item, "days", f"{path}.days")) or WEEKDAYS
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown:
        raise InvalidSession(f"{path}.days: unknown day {unknown[0]!r} (use {', '.join(WEEKDAYS)})")
    return WarmSchedule(_text(item, "timezone", f"{path}.timezone"), start, end, days)


def _clock(item: Mapping[str, Any], key: str, path: str) -> str:
    value = _text(item, key, f"{path}.{key}")
    hours, sep, minutes = value.partition(":")
    if not (sep and len(hours) == len(minutes) == 2 and (hours + minutes).isdigit()):
        raise InvalidSession(f"{path}.{key} must be a time as HH:MM, got {value!r}")
    if int(hours) > 23 or int(minutes) > 59:
        raise InvalidSession(f"{path}.{key} must be a time as HH:MM, got {value!r}")
    return value


def _workload(workload: Mapping[str, Any]) -> Workload:
    env = tuple(
        _plain_dict(item, "spec.workload.env[]")
        for item in _list(workload, "env", "spec.workload.env")
    )
    reserved = sorted({str(item.get("name")) for item in env} & RESERVED_ENV_NAMES)
    if reserved:
        raise InvalidSession(
            f"spec.workload.env sets {', '.join(reserved)}, which the operator sets itself"
        )
    return Workload(
        image=_text(workload, "image", "spec.workload.image"),
        image_pull_policy=_optional_text(
            workload, "imagePullPolicy", "spec.workload.imagePullPolicy"
        ),
        command=tuple(str(arg) for arg in _list(workload, "command", "spec.workload.command")),
        args=tuple(str(arg) for arg in _list(workload, "args", "spec.workload.args")),
        env=env,
        resources=_dict(workload, "resources", "spec.workload.resources"),
        node_selector=_dict(workload, "nodeSelector", "spec.workload.nodeSelector"),
        tolerations=tuple(
            _plain_dict(item, "spec.workload.tolerations[]")
            for item in _list(workload, "tolerations", "spec.workload.tolerations")
        ),
        service_account_name=_optional_text(
            workload, "serviceAccountName", "spec.workload.serviceAccountName"
        ),
        pod_labels=_dict(workload, "podLabels", "spec.workload.podLabels"),
        pod_annotations=_dict(workload, "podAnnotations", "spec.workload.podAnnotations"),
        termination_grace_period_seconds=_int(
            workload,
            "terminationGracePeriodSeconds",
            DEFAULT_TERMINATION_GRACE_SECONDS,
            "spec.workload.terminationGracePeriodSeconds",
            0,
            maximum=MAX_TERMINATION_GRACE_SECONDS,
        ),
    )


def _redis(redis: Mapping[str, Any], settings: OperatorSettings) -> RedisTarget:
    if "password" in redis:
        # Normally refused by the CRD; repeated for servers without CEL validation.
        raise InvalidSession(
            "spec.redis.password is not allowed: store the password in a Secret"
            " and reference it with spec.redis.passwordSecretRef"
        )
    address = _optional_text(redis, "address", "spec.redis.address")
    if address is None:
        host, port = parse_address(settings.redis.address, "the operator's Redis address setting")
    else:
        host, port = parse_address(address, "spec.redis.address")
    ref = _mapping(redis.get("passwordSecretRef"), "spec.redis.passwordSecretRef")
    if ref:
        secret = SecretKeyRef(
            name=_text(ref, "name", "spec.redis.passwordSecretRef.name"),
            key=_optional_text(ref, "key", "spec.redis.passwordSecretRef.key")
            or DEFAULT_SECRET_KEY,
        )
    else:
        secret = SecretKeyRef(settings.redis.secret_name, settings.redis.secret_key)
    return RedisTarget(
        host=host,
        port=port,
        database=_int(redis, "database", settings.redis.database, "spec.redis.database", 0),
        password_secret=secret,
        username_secret=_username(redis, settings),
        tls=_tls(redis, settings),
    )


def _username(redis: Mapping[str, Any], settings: OperatorSettings) -> KeyRef | None:
    if "username" in redis:
        # As for the password: refused by the CRD, repeated here.
        raise InvalidSession(
            "spec.redis.username is not allowed: store the username in a Secret"
            " and reference it with spec.redis.usernameSecretRef"
        )
    ref = _mapping(redis.get("usernameSecretRef"), "spec.redis.usernameSecretRef")
    if not ref:
        return settings.redis.auth.username
    return _key_ref(ref, SECRET, "spec.redis.usernameSecretRef", DEFAULT_USERNAME_KEY)


def _tls(redis: Mapping[str, Any], settings: OperatorSettings) -> RedisTls | None:
    """spec.redis.tls replaces the operator's default as a whole, as passwordSecretRef
    does: a session never runs with half its own TLS settings and half the default's."""
    if redis.get("tls") is None:
        return settings.redis.auth.tls
    tls = _mapping(redis.get("tls"), "spec.redis.tls")
    for literal, use in (
        ("ca", "caSecretRef or caConfigMapRef"),
        ("cert", "clientCertSecretRef"),
        ("key", "clientCertSecretRef"),
    ):
        if literal in tls:
            raise InvalidSession(
                f"spec.redis.tls.{literal} is not allowed: store it in a Secret"
                f" and reference it with spec.redis.tls.{use}"
            )
    enabled = tls.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidSession("spec.redis.tls.enabled must be true or false")
    if not enabled:
        if set(tls) - {"enabled"}:
            raise InvalidSession(
                "spec.redis.tls.enabled is false: remove the other spec.redis.tls fields"
            )
        return None
    ca_secret = _mapping(tls.get("caSecretRef"), "spec.redis.tls.caSecretRef")
    ca_map = _mapping(tls.get("caConfigMapRef"), "spec.redis.tls.caConfigMapRef")
    if "caSecretRef" in tls and "caConfigMapRef" in tls:
        raise InvalidSession("spec.redis.tls: set caSecretRef or caConfigMapRef, not both")
    # Presence, not truthiness: an empty reference is a mistake to report.
    ca = None
    if "caSecretRef" in tls:
        ca = _key_ref(ca_secret, SECRET, "spec.redis.tls.caSecretRef", DEFAULT_CA_KEY)
    elif "caConfigMapRef" in tls:
        ca = _key_ref(ca_map, CONFIG_MAP, "spec.redis.tls.caConfigMapRef", DEFAULT_CA_KEY)
    client = _mapping(tls.get("clientCertSecretRef"), "spec.redis.tls.clientCertSecretRef")
    cert = key = None
    if "clientCertSecretRef" in tls:
        path = "spec.redis.tls.clientCertSecretRef"
        name = _text(client, "name", f"{path}.name")
        cert = KeyRef(
            SECRET, name, _optional_text(client, "certKey", f"{path}.certKey") or DEFAULT_CERT_KEY
        )
        key = KeyRef(
            SECRET, name, _optional_text(client, "keyKey", f"{path}.keyKey") or DEFAULT_KEY_KEY
        )
    return RedisTls(
        ca=ca,
        client_cert=cert,
        client_key=key,
        server_name=_optional_text(tls, "serverName", "spec.redis.tls.serverName") or None,
    )


def _key_ref(ref: Mapping[str, Any], kind: str, path: str, default_key: str) -> KeyRef:
    return KeyRef(
        kind,
        _text(ref, "name", f"{path}.name"),
        _optional_text(ref, "key", f"{path}.key") or default_key,
    )


# --- field readers: each names the field in its error so the message is actionable.


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSession(f"{path} must be an object")
    return value


def _text(source: Mapping[str, Any], key: str, path: str) -> str:
    value = _optional_text(source, key, path)
    if not value:
        raise InvalidSession(f"{path} is required")
    return value


def _optional_text(source: Mapping[str, Any], key: str, path: str) -> str | None:
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSession(f"{path} must be a string")
    return value


def _int(
    source: Mapping[str, Any],
    key: str,
    default: int,
    path: str,
    minimum: int,
    maximum: int | None = None,
) -> int:
    value = source.get(key, default)
    # bool is an int subclass; true is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSession(f"{path} must be an integer")
    if value < minimum:
        raise InvalidSession(f"{path} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidSession(f"{path} must be at most {maximum}")
    return value


def _bool(source: Mapping[str, Any], key: str, path: str) -> bool:
    value = source.get(key, False)
    if not isinstance(value, bool):
        raise InvalidSession(f"{path} must be true or false")
    return value


def _list(source: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = source.get(key)
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise InvalidSession(f"{path} must be a list")
    return list(value)


def _dict(source: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    return _plain_dict(_mapping(source.get(key), path), path)


def _plain_dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSession(f"{path} must be an object")
    result: dict[str, Any] = plain(value)
    return result
