from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from usersession_operator.session.model import (
    WEEKDAYS,
    InvalidSession,
    RedisTarget,
    SecretKeyRef,
    WarmSchedule,
)
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings, RedisDefaults

MakeBody = Callable[..., dict[str, Any]]


def test_minimal_body_gets_schema_defaults_and_settings_redis(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    session = session_from_body(make_body(), settings)
    assert (session.namespace, session.name, session.generation) == ("team-a", "alice", 3)
    assert session.uid == "0b6f3c1e-1111-4222-8333-944455556666"
    assert session.user_id == "alice@example.com"
    assert session.suspend is False
    assert session.queue_name == "usersession:team-a:alice"
    assert (session.activation_length, session.target_length) == (0, 1)
    assert (session.idle_timeout_seconds, session.polling_interval_seconds) == (120, 10)
    assert session.redis == RedisTarget(
        host="redis.platform.svc",
        port=6380,
        database=2,
        password_secret=SecretKeyRef("platform-redis", "redis-password"),
    )
    workload = session.workload
    assert workload.image == "registry.example.com/session-worker:0.1.0"
    assert workload.image_pull_policy is None
    assert (workload.command, workload.args, workload.env, workload.tolerations) == (
        (),
        (),
        (),
        (),
    )
    assert not (workload.resources or workload.node_selector or workload.pod_labels)


def test_the_fast_wake_path_and_its_tls_come_from_the_operator_settings(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    plain = session_from_body(make_body(), settings)
    assert (plain.push_address, plain.push_tls) == (None, False)
    tls = replace(settings, push_address="uso.ops.svc:9443", push_tls_dir="/etc/push-tls")
    session = session_from_body(make_body(), tls)
    assert (session.push_address, session.push_tls) == ("uso.ops.svc:9443", True)


def test_spec_values_win_over_defaults(make_body: MakeBody, settings: OperatorSettings) -> None:
    body = make_body(
        suspend=True,
        queue={"name": "jobs:alice", "activationLength": 5, "targetLength": 3},
        scaling={"idleTimeoutSeconds": 600, "pollingIntervalSeconds": 2},
        redis={
            "address": "cache.example:6379",
            "database": 7,
            "passwordSecretRef": {"name": "alice-redis", "key": "pw"},
        },
    )
    session = session_from_body(body, settings)
    assert session.suspend is True
    assert session.queue_name == "jobs:alice"
    assert (session.activation_length, session.target_length) == (5, 3)
    assert (session.idle_timeout_seconds, session.polling_interval_seconds) == (600, 2)
    assert session.redis == RedisTarget("cache.example", 6379, 7, SecretKeyRef("alice-redis", "pw"))


def test_redis_fields_default_one_by_one(make_body: MakeBody, settings: OperatorSettings) -> None:
    session = session_from_body(make_body(redis={"database": 4}), settings)
    assert session.redis.address == "redis.platform.svc:6380"
    assert session.redis.database == 4
    assert session.redis.password_secret == SecretKeyRef("platform-redis", "redis-password")


def test_secret_ref_without_key_uses_the_schema_default_key(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    body = make_body(redis={"passwordSecretRef": {"name": "alice-redis"}})
    # The schema's default ("password"), not the operator's key for its own Secret.
    assert session_from_body(body, settings).redis.password_secret == SecretKeyRef(
        "alice-redis", "password"
    )


def test_builtin_settings_are_enough() -> None:
    body = {
        "metadata": {"name": "s", "namespace": "ns", "uid": "u"},
        "spec": {"userId": "u1", "workload": {"image": "img"}},
    }
    redis = session_from_body(body, OperatorSettings()).redis
    assert (redis.address, redis.database) == ("redis:6379", 0)
    assert redis.password_secret == SecretKeyRef("redis-auth", "password")


def test_workload_is_copied_not_aliased(make_body: MakeBody, settings: OperatorSettings) -> None:
    env = [{"name": "A", "value": "1"}]
    body = make_body(workload={"image": "img", "env": env, "podLabels": {"team": "x"}})
    session = session_from_body(body, settings)
    env[0]["value"] = "changed"
    body["spec"]["workload"]["podLabels"]["team"] = "changed"
    assert session.workload.env == ({"name": "A", "value": "1"},)
    assert session.workload.pod_labels == {"team": "x"}


def test_bad_address_in_spec_is_invalid_session(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    with pytest.raises(InvalidSession, match=r"spec\.redis\.address"):
        session_from_body(make_body(redis={"address": "redis:notaport"}), settings)


def test_bad_address_setting_is_named_as_such(make_body: MakeBody) -> None:
    settings = OperatorSettings(redis=RedisDefaults(address="redis"))
    with pytest.raises(InvalidSession, match="operator's Redis address setting"):
        session_from_body(make_body(), settings)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"userId": ""}, r"spec\.userId is required"),
        ({"workload": {}}, r"spec\.workload\.image is required"),
        ({"workload": {"image": "i", "env": "A=1"}}, r"spec\.workload\.env must be a list"),
        ({"scaling": {"idleTimeoutSeconds": 0}}, r"idleTimeoutSeconds must be at least 1"),
        ({"queue": {"targetLength": True}}, r"targetLength must be an integer"),
        ({"suspend": "yes"}, r"spec\.suspend must be true or false"),
        (
            {"workload": {"image": "i", "terminationGracePeriodSeconds": 3601}},
            r"spec\.workload\.terminationGracePeriodSeconds must be at most 3600",
        ),
        (
            {"workload": {"image": "i", "terminationGracePeriodSeconds": -1}},
            r"terminationGracePeriodSeconds must be at least 0",
        ),
        ({"redis": {"password": "hunter2"}}, r"passwordSecretRef"),
        (
            {"workload": {"image": "i", "env": [{"name": "REDIS_PASSWORD", "value": "x"}]}},
            r"REDIS_PASSWORD",
        ),
        (
            {"workload": {"image": "i", "imagePullSecrets": ["registry"]}},
            r"spec\.workload\.imagePullSecrets\[\] must be an object",
        ),
        (
            {"workload": {"image": "i", "imagePullSecrets": [{}]}},
            r"spec\.workload\.imagePullSecrets\[\]\.name is required",
        ),
        (
            {"workload": {"image": "i", "podSecurityContext": "restricted"}},
            r"spec\.workload\.podSecurityContext must be an object",
        ),
    ],
)
def test_invalid_specs_are_refused_with_the_field_named(
    make_body: MakeBody, settings: OperatorSettings, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidSession, match=message):
        session_from_body(make_body(**spec), settings)


def test_missing_spec_is_refused(settings: OperatorSettings) -> None:
    with pytest.raises(InvalidSession, match=r"spec\.userId"):
        session_from_body({"metadata": {"name": "a", "namespace": "b"}}, settings)


def test_lifecycle_fields_default_off_and_read_when_set(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    plain = session_from_body(make_body(), settings)
    assert (plain.start_timeout_seconds, plain.warm_schedules) == (300, ())
    assert plain.expire_after_idle_seconds is None
    body = make_body()
    body["spec"]["expireAfterIdleSeconds"] = 3600
    body["spec"]["scaling"] = {
        "startTimeoutSeconds": 60,
        "warmSchedules": [
            {"timezone": "UTC", "start": "08:00", "end": "09:30", "days": ["Mon"]},
            {"timezone": "Asia/Tokyo", "start": "00:00", "end": "23:59"},
        ],
    }
    session = session_from_body(body, settings)
    assert (session.start_timeout_seconds, session.expire_after_idle_seconds) == (60, 3600)
    assert session.warm_schedules == (
        WarmSchedule("UTC", "08:00", "09:30", ("Mon",)),
        WarmSchedule("Asia/Tokyo", "00:00", "23:59", WEEKDAYS),
    )


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"timezone": "UTC", "start": "9:00", "end": "10:00"}, "start must be a time as HH:MM"),
        ({"timezone": "UTC", "start": "09:00", "end": "24:00"}, "end must be a time as HH:MM"),
        ({"timezone": "UTC", "start": "22:00", "end": "06:00"}, "end must be after start"),
        ({"timezone": "UTC", "start": "09:00", "end": "10:00", "days": ["Monday"]}, "'Monday'"),
        ({"start": "09:00", "end": "10:00"}, "timezone is required"),
    ],
)
def test_a_bad_warm_window_is_refused_with_its_path(
    make_body: MakeBody, settings: OperatorSettings, window: dict[str, Any], message: str
) -> None:
    body = make_body()
    body["spec"]["scaling"] = {"warmSchedules": [window]}
    with pytest.raises(InvalidSession, match=message):
        session_from_body(body, settings)


# -- the operator's workload defaults (the chart's sessionWorkloadDefaults) --------

PLATFORM = {
    "nodeSelector": {"pool": "sessions"},
    "tolerations": [{"key": "pool", "operator": "Exists"}],
    "priorityClassName": "sessions",
    "imagePullSecrets": [{"name": "platform-registry"}],
    "podSecurityContext": {"runAsUser": 1000, "fsGroup": 1000},
    "securityContext": {"readOnlyRootFilesystem": True},
}


def test_workload_defaults_fill_what_the_session_leaves_out(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    workload = session_from_body(
        make_body(), replace(settings, workload_defaults=PLATFORM)
    ).workload
    assert workload.node_selector == {"pool": "sessions"}
    assert workload.tolerations == ({"key": "pool", "operator": "Exists"},)
    assert workload.priority_class_name == "sessions"
    assert workload.image_pull_secrets == ("platform-registry",)
    assert workload.pod_security_context == {"runAsUser": 1000, "fsGroup": 1000}
    assert workload.security_context == {"readOnlyRootFilesystem": True}


def test_a_sessions_own_field_replaces_the_default_whole_but_security_contexts_merge(
    make_body: MakeBody, settings: OperatorSettings
) -> None:
    body = make_body(
        workload={
            "image": "img",
            "nodeSelector": {"gpu": "yes"},
            "tolerations": [],
            "podSecurityContext": {"runAsUser": 2000},
        }
    )
    workload = session_from_body(body, replace(settings, workload_defaults=PLATFORM)).workload
    assert workload.node_selector == {"gpu": "yes"}  # not merged with pool: sessions
    assert workload.tolerations == ()  # an empty list is the session's choice
    assert workload.priority_class_name == "sessions"  # not set by the session
    assert workload.pod_security_context == {"runAsUser": 2000, "fsGroup": 1000}
    assert PLATFORM["podSecurityContext"] == {"runAsUser": 1000, "fsGroup": 1000}  # untouched


@pytest.mark.parametrize(
    ("defaults", "complaint"),
    [
        ({"image": "x"}, "may set only resources, .* not image"),
        ({"env": [], "tolerations": []}, "not env"),
        ({"tolerations": {"key": "pool"}}, "WORKLOAD_DEFAULTS: tolerations must be a list"),
        ({"podSecurityContext": "root"}, "WORKLOAD_DEFAULTS: podSecurityContext must be an object"),
    ],
)
def test_workload_defaults_no_session_could_use_are_refused_at_start(
    defaults: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidSession, match=complaint):
        OperatorSettings(workload_defaults=defaults).check()
