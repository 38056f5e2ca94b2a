"""Production Redis: mutual TLS and an ACL user, for all four of its users.

A second redis-server speaks only TLS, asks every client for a certificate
signed by its own CA (not the cluster's, which KEDA already trusts) and knows
an ACL user limited to the sessions' keys, channels and commands
(usersession_localstack.tlsredis). Sessions name it in spec.redis. The real
KEDA wakes them through its redis scaler (the fast-wake path is off in this
module, so nothing else can), the operator polls and cleans up, the session
API pushes and waits for replies, and the reference worker, run for each
Running pod with the pod's environment and mounted files, answers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.logs import Collect
from support.namespaces import fresh_namespace
from support.sessions import FAST_SCALING, Api, condition
from usersession_localstack.cluster import LocalCluster
from usersession_localstack.loopback import wait_for
from usersession_localstack.pki import REDIS_SERVER_NAME
from usersession_localstack.pods import PodRunner
from usersession_localstack.tlsredis import TlsRedis
from usersession_operator.session.keys import processing_key
from usersession_operator.session.redisrefs import (
    CONFIG_MAP,
    SECRET,
    KeyRef,
    RedisAuthDefaults,
    RedisTls,
)
from usersession_operator.sessionapi.app import create_app
from usersession_operator.sessionapi.settings import ApiSettings
from usersession_operator.settings import RedisDefaults

from .sessionapi.harness import ALICE_TOKEN, IMAGE, TOKENS, Http, Served

pytestmark = pytest.mark.usefixtures("operator")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Run as the chart's ServiceAccount (hack/test.sh runs the example tests so), the
# operator gets the RBAC of a chart installed with the examples' values: they
# grant every Secret and ConfigMap this module's sessions and defaults name.
OPERATOR_CHART_VALUES = ("--values", str(EXAMPLES / "chart-values.yaml"))


def redis_defaults(tls_redis: TlsRedis, prefix: str) -> dict[str, str]:
    """The TLS server as the default Redis of the operator or the session API."""
    return {
        f"{prefix}REDIS_ADDRESS": tls_redis.address,
        f"{prefix}REDIS_SECRET_NAME": "redis-acl",
        f"{prefix}REDIS_SECRET_KEY": "password",
        f"{prefix}REDIS_USERNAME_SECRET_NAME": "redis-acl",
        f"{prefix}REDIS_TLS": "true",
        f"{prefix}REDIS_TLS_CA_CONFIGMAP_NAME": "redis-ca",
        f"{prefix}REDIS_TLS_CLIENT_SECRET_NAME": "redis-client-tls",
        f"{prefix}REDIS_TLS_SERVER_NAME": REDIS_SERVER_NAME,
    }


def OPERATOR_ENV(request: pytest.FixtureRequest) -> dict[str, str]:  # the name conftest reads
    # The fast path off: KEDA's own poll is then the only way a session wakes,
    # proof that KEDA reads over TLS.
    off = {"USERSESSION_PUSH_PORT": "0", "USERSESSION_PUSH_ADDRESS": ""}
    return off | redis_defaults(request.getfixturevalue("tls_redis"), "USERSESSION_")


def tls_secrets(tls_redis: TlsRedis) -> dict[str, dict[str, str]]:
    """The Secrets sessions name for this server's CA and client certificate."""
    files = tls_redis.files
    return {
        "redis-client-tls": {
            "tls.crt": files.client_cert.read_text(),
            "tls.key": files.client_key.read_text(),
        },
        "redis-ca": {"ca.crt": files.ca_cert.read_text()},
    }


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsRedis]:
    with TlsRedis(tmp_path_factory.mktemp("redis-tls")) as server:
        yield server


@pytest.fixture(scope="module")
def tls_namespace(
    cluster: LocalCluster, api_client: client.ApiClient, tls_redis: TlsRedis
) -> Iterator[str]:
    """The session API's namespace, holding what sessions reference (and the default
    Redis Secret, which the API's /health reads)."""
    files = tls_redis.files
    core = client.CoreV1Api(api_client)
    with fresh_namespace(api_client, "tls", cluster.redis_password) as ns:
        secrets = {
            "redis-acl": {"username": tls_redis.username, "password": tls_redis.password},
            "redis-stranger": {"username": "nobody", "password": tls_redis.password},
            **tls_secrets(tls_redis),
            "redis-wrong-ca": {"ca.crt": files.wrong_ca_cert.read_text()},
        }
        for name, data in secrets.items():
            core.create_namespaced_secret(ns, {"metadata": {"name": name}, "stringData": data})
        core.create_namespaced_config_map(
            ns, {"metadata": {"name": "redis-ca"}, "data": {"ca.crt": files.ca_cert.read_text()}}
        )
        yield ns


@pytest.fixture(scope="module")
def alice(api_client: client.ApiClient, tls_namespace: str, tls_redis: TlsRedis) -> Iterator[Http]:
    """The session API with the same defaults as the operator, from its environment."""
    env = {"SESSIONAPI_NAMESPACE": tls_namespace, "SESSIONAPI_TOKENS": TOKENS}
    env |= {"SESSIONAPI_DEFAULT_IMAGE": IMAGE, "SESSIONAPI_REPLY_WAIT": "5"}
    settings = ApiSettings.from_env(env | redis_defaults(tls_redis, "SESSIONAPI_"))
    app = create_app(settings, api_client=api_client)
    with Served(app) as running:
        http = Http(running.base, ALICE_TOKEN)
        wait_for(lambda: http.call("GET", "/health").status_code == 200, 30)
        yield http


@pytest.fixture(scope="module")
def workers(
    api_client: client.ApiClient, tls_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PodRunner]:
    runner = PodRunner(
        api_client, tmp_path_factory.mktemp("tls-workers"), namespace=tls_namespace
    ).start()
    yield runner
    runner.stop()


def known_to(alice: Http, sid: str) -> None:
    """Until the session API's watch-backed cache has a session created behind its back."""
    wait_for(lambda: alice.call("GET", f"/session/{sid}/status").status_code == 200, 30)


def redis_spec(tls_redis: TlsRedis, **changes: Any) -> dict[str, Any]:
    """spec.redis for the TLS server: CA from a ConfigMap, mutual TLS, the ACL user."""
    spec: dict[str, Any] = {
        "address": tls_redis.address,
        "passwordSecretRef": {"name": "redis-acl", "key": "password"},
        "usernameSecretRef": {"name": "redis-acl"},
        "tls": {
            "caConfigMapRef": {"name": "redis-ca"},
            "clientCertSecretRef": {"name": "redis-client-tls"},
            # On the certificate next to 127.0.0.1; what the operator, the API and
            # the worker check (KEDA checks the address's host).
            "serverName": REDIS_SERVER_NAME,
        },
    }
    spec.update(changes)
    return spec


def test_keda_wakes_the_worker_answers_and_deletion_cleans_up_over_tls_with_the_acl_user(
    api: Api, tls_namespace: str, tls_redis: TlsRedis, alice: Http, workers: PodRunner
) -> None:
    ns, sid = tls_namespace, str(uuid.uuid4())
    api.create(ns, sid, scaling=FAST_SCALING, redis=redis_spec(tls_redis))
    status = api.wait_status(
        ns,
        sid,
        lambda s: (
            s.get("phase") == "Sleeping"
            and condition(s, "ScalerReady")["status"] == "True"
            and condition(s, "RedisReachable")["status"] == "True"
        ),
        timeout=60,
    )
    queue = status["queueName"]

    # The API pushes over TLS as the ACL user; only KEDA's redis scaler can wake it.
    chat = alice.call("POST", f"/session/{sid}/chat?wait=40", {"message": "over TLS"})
    assert chat.status_code == 200, chat.text
    assert chat.json()["reply"] == "echo: over TLS"
    assert api.replicas(ns, sid) == 1
    shown = alice.call("GET", f"/session/{sid}/status").json()
    assert shown["phase"] in {"Waking", "Running"}, shown
    api.wait_status(ns, sid, lambda s: s.get("phase") == "Running", timeout=30)

    admin = tls_redis.admin(decode_responses=True)
    assert admin.llen(queue) == 0
    assert admin.llen(processing_key(queue)) == 0
    assert admin.keys(f"{queue}:reply:*"), "the reply and its marker live under the queue"

    api.delete(ns, sid)
    wait_for(lambda: api.session(ns, sid) is None, timeout=60)
    assert admin.keys(f"{queue}*") == [], "the finalizer removed the session's keys over TLS"


def test_the_managed_redis_example_as_written_becomes_ready_and_wakes(
    api: Api, tls_namespace: str, tls_redis: TlsRedis
) -> None:
    # examples/usersession-managed-redis.yaml with one change: the address, from a
    # cloud endpoint to this TLS server. Its Secret and ConfigMap names and keys
    # (redis-acl, redis-ca, redis-client-tls) are the ones this module creates.
    example = yaml.safe_load((EXAMPLES / "usersession-managed-redis.yaml").read_text())
    spec = example["spec"]
    spec["redis"]["address"] = tls_redis.address
    ns, name = tls_namespace, f"{example['metadata']['name']}-{uuid.uuid4().hex[:6]}"
    api.create(ns, name, **spec)
    status = api.wait_status(
        ns,
        name,
        lambda s: (
            condition(s, "Ready")["status"] == "True"
            and condition(s, "ScalerReady")["status"] == "True"
            and condition(s, "RedisReachable")["status"] == "True"
        ),
        timeout=60,
    )
    assert status["phase"] == "Sleeping"
    # The push path is off here: only KEDA's redis scaler, over mutual TLS as the
    # ACL user, can wake it.
    tls_redis.admin().lpush(status["queueName"], json.dumps({"type": "wake"}))
    api.wait_replicas(ns, name, 1, timeout=40)
    api.delete(ns, name)
    wait_for(lambda: api.session(ns, name) is None, timeout=60)
    assert tls_redis.admin().keys(f"{status['queueName']}*") == []


def test_the_full_examples_redis_section_as_written_becomes_ready(
    api: Api, api_client: client.ApiClient, tls_redis: TlsRedis
) -> None:
    # examples/usersession-full.yaml's spec.redis (a TLS CA from a Secret, mutual
    # TLS, an ACL user) against this server, in a namespace holding the Secrets it
    # names with the keys examples/redis-secret.yaml has. Changed: the address and
    # server name (this server's), the queue name (the ACL user's keys are
    # usersession:*, docs/operations.md) and the storage (no provisioner here).
    example = yaml.safe_load((EXAMPLES / "usersession-full.yaml").read_text())
    spec = example["spec"]
    spec["redis"]["address"] = tls_redis.address
    spec["redis"]["tls"]["serverName"] = REDIS_SERVER_NAME
    del spec["queue"]["name"], spec["storage"]
    auth = yaml.safe_load((EXAMPLES / "redis-secret.yaml").read_text())
    core = client.CoreV1Api(api_client)
    with fresh_namespace(api_client, "full-example") as ns:
        # Only the values differ from the example Secret: its keys are what the session names.
        values = {"password": tls_redis.password, "username": tls_redis.username}
        assert auth["stringData"].keys() == values.keys()
        secrets = {
            auth["metadata"]["name"]: values,
            **tls_secrets(tls_redis),
        }
        for name, data in secrets.items():
            core.create_namespaced_secret(ns, {"metadata": {"name": name}, "stringData": data})
        name = example["metadata"]["name"]
        api.create(ns, name, **spec)
        api.wait_status(
            ns,
            name,
            lambda s: all(
                condition(s, kind)["status"] == "True"
                for kind in ("Ready", "ScalerReady", "RedisReachable")
            ),
            timeout=60,
        )
        api.delete(ns, name)
        wait_for(lambda: api.session(ns, name) is None, timeout=60)


def test_a_session_with_no_redis_spec_runs_on_the_tls_defaults_through_the_session_api(
    api: Api, tls_namespace: str, tls_redis: TlsRedis, alice: Http, workers: PodRunner
) -> None:
    created = alice.call("POST", "/session/create", {})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    obj = api.session(tls_namespace, sid)
    assert obj is not None
    assert "redis" not in obj["spec"]
    # Scaling is the schema's default here (KEDA polls every 10 s): allow for it.
    chat = alice.call("POST", f"/session/{sid}/chat?wait=60", {"message": "defaults"})
    assert chat.status_code == 200, chat.text
    assert chat.json()["reply"] == "echo: defaults"
    status = api.wait_status(
        tls_namespace, sid, lambda s: condition(s, "RedisReachable")["status"] == "True"
    )
    assert condition(status, "ScalerReady")["status"] == "True"
    assert alice.call("DELETE", f"/session/{sid}").status_code == 202
    wait_for(lambda: api.session(tls_namespace, sid) is None, timeout=60)
    assert tls_redis.admin().keys(f"{status['queueName']}*") == []


def _failing(
    api: Api, alice: Http, ns: str, tls_redis: TlsRedis, **changes: Any
) -> tuple[str, str, str]:
    """A session that cannot reach Redis: (its id, the status's words, the API's)."""
    sid = str(uuid.uuid4())
    api.create(ns, sid, scaling=FAST_SCALING, redis=redis_spec(tls_redis, **changes))
    status = api.wait_status(
        ns, sid, lambda s: condition(s, "RedisReachable")["status"] == "False", timeout=60
    )
    assert status["phase"] == "Degraded"
    assert condition(status, "Ready")["status"] == "False"
    known_to(alice, sid)
    reply = alice.call("POST", f"/session/{sid}/wake")
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["code"] == "redis_unavailable"
    return sid, condition(status, "RedisReachable")["message"], error["message"]


def test_a_wrong_ca_is_named_in_status_and_by_the_session_api(
    api: Api, tls_namespace: str, tls_redis: TlsRedis, alice: Http
) -> None:
    tls = {
        "caSecretRef": {"name": "redis-wrong-ca"},
        "clientCertSecretRef": {"name": "redis-client-tls"},
    }
    sid, in_status, from_api = _failing(api, alice, tls_namespace, tls_redis, tls=tls)
    for message in (in_status, from_api):
        assert "does not verify against the configured CA" in message, message
        assert "CERTIFICATE_VERIFY_FAILED" in message, message
    # KEDA, given the same wrong CA, says so too.
    status = api.wait_status(
        tls_namespace,
        sid,
        lambda s: condition(s, "ScalerReady")["status"] == "False",
        timeout=60,
    )
    assert "certificate" in condition(status, "ScalerReady")["message"]


def test_an_unknown_user_is_named_in_status_and_by_the_session_api(
    api: Api, tls_namespace: str, tls_redis: TlsRedis, alice: Http
) -> None:
    _, in_status, from_api = _failing(
        api, alice, tls_namespace, tls_redis, usernameSecretRef={"name": "redis-stranger"}
    )
    for message in (in_status, from_api):
        assert "invalid username-password pair" in message, message
        assert "nobody" not in message  # the username is the Secret's business


def test_a_missing_secret_key_is_named_in_status_and_by_the_session_api(
    api: Api, tls_namespace: str, tls_redis: TlsRedis, alice: Http
) -> None:
    _, in_status, from_api = _failing(
        api,
        alice,
        tls_namespace,
        tls_redis,
        usernameSecretRef={"name": "redis-acl", "key": "user"},
    )
    for message in (in_status, from_api):
        assert f"Secret {tls_namespace}/redis-acl has no key 'user'" in message, message


def test_the_username_and_client_key_appear_in_no_status_event_child_or_log(
    api: Api,
    tls_namespace: str,
    tls_redis: TlsRedis,
    alice: Http,
    workers: PodRunner,
    operator_log: Collect,
) -> None:
    ns, sid = tls_namespace, str(uuid.uuid4())
    api.create(ns, sid, scaling=FAST_SCALING, redis=redis_spec(tls_redis))
    known_to(alice, sid)
    chat = alice.call("POST", f"/session/{sid}/chat?wait=40", {"message": "hello"})
    assert chat.status_code == 200, chat.text
    seen = {
        "the UserSession (status, annotations)": json.dumps(api.session(ns, sid)),
        "the children": json.dumps(
            [api.child(k, ns, sid) for k in ("Deployment", "ScaledObject", "TriggerAuthentication")]
        ),
    }
    tls_redis.stop()  # the error paths: where secrets tend to leak
    try:
        status = api.wait_status(
            ns, sid, lambda s: condition(s, "RedisReachable")["status"] == "False", timeout=60
        )
        seen["the status during an outage"] = json.dumps(status)
        seen["the session API during an outage"] = alice.call("POST", f"/session/{sid}/wake").text
        api.delete(ns, sid)
        wait_for(
            lambda: any(
                e.reason == "RedisCleanupFailed" for e in api.core.list_namespaced_event(ns).items
            ),
            timeout=30,
        )
    finally:
        tls_redis.start()
    wait_for(lambda: api.session(ns, sid) is None, timeout=60)
    events = api.core.list_namespaced_event(ns)
    seen["events"] = json.dumps(api.core.api_client.sanitize_for_serialization(events))
    seen["the session API's metrics"] = alice.call("GET", "/metrics").text
    seen["the logs of the operator and the session API"] = "\n".join(operator_log.lines)
    assert "RedisCleanupFailed" in seen["events"]
    assert "DEBUG urllib3.connectionpool" in seen["the logs of the operator and the session API"]
    key_lines = tls_redis.files.client_key.read_text().splitlines()[1:-1]
    secrets = {
        "the ACL username": tls_redis.username,
        "the ACL password": tls_redis.password,
        **{f"line {i} of the client key": line for i, line in enumerate(key_lines)},
    }
    for where, text in seen.items():
        for what, value in secrets.items():
            assert value not in text, f"{what} leaked into {where}"


def _api_with_tls_defaults(
    api_client: client.ApiClient, ns: str, tls_redis: TlsRedis, ca: KeyRef
) -> Served:
    """A session API whose defaults (what its /health checks) are the TLS server."""
    client_cert = KeyRef(SECRET, "redis-client-tls", "tls.crt")
    auth = RedisAuthDefaults(
        username=KeyRef(SECRET, "redis-acl", "username"),
        tls=RedisTls(
            ca=ca,
            client_cert=client_cert,
            client_key=KeyRef(SECRET, "redis-client-tls", "tls.key"),
            server_name=REDIS_SERVER_NAME,
        ),
    )
    settings = ApiSettings(
        namespace=ns,
        redis=RedisDefaults(
            address=tls_redis.address, secret_name="redis-acl", secret_key="password", auth=auth
        ),
        tokens=TOKENS,
    )
    return Served(create_app(settings, api_client=api_client))


def test_the_session_apis_defaults_reach_the_tls_server_and_a_wrong_default_ca_is_named(
    api_client: client.ApiClient, tls_namespace: str, tls_redis: TlsRedis
) -> None:
    good = KeyRef(CONFIG_MAP, "redis-ca", "ca.crt")
    with _api_with_tls_defaults(api_client, tls_namespace, tls_redis, good) as served:
        health = Http(served.base)
        wait_for(lambda: health.call("GET", "/health").status_code == 200, 30)
    wrong = KeyRef(SECRET, "redis-wrong-ca", "ca.crt")
    with _api_with_tls_defaults(api_client, tls_namespace, tls_redis, wrong) as served:
        answer = Http(served.base).call("GET", "/health")
        assert answer.status_code == 503
        assert answer.json()["kubernetes"] == {"ok": True}
        assert "does not verify against the configured CA" in answer.json()["redis"]["error"]
