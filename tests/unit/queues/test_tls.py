"""The operator's and the session API's TLS plumbing, without a server (the
integration tier connects to a real TLS-only redis-server)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from usersession_localstack.pki import make_redis_tls
from usersession_operator.queues.connections import QueueTarget
from usersession_operator.queues.tls import (
    BadCredential,
    Credentials,
    TlsConnection,
    fingerprint,
    tls_context,
)
from usersession_operator.session.spec import session_from_body
from usersession_operator.settings import OperatorSettings, RedisDefaults


def test_a_ca_that_is_not_pem_is_named_not_quoted() -> None:
    with pytest.raises(BadCredential, match=r"the Redis CA \(namespace ns\) is not a PEM"):
        tls_context("not a certificate", None, None, "namespace ns")


def test_a_client_key_that_does_not_match_is_refused_without_quoting_it(tmp_path: Path) -> None:
    files = make_redis_tls(tmp_path)
    ca = files.ca_cert.read_text()
    wrong_key = files.server_key.read_text()
    with pytest.raises(BadCredential, match="do not load") as info:
        tls_context(ca, files.client_cert.read_text(), wrong_key, "namespace ns")
    assert wrong_key.splitlines()[1] not in str(info.value)
    context = tls_context(
        ca, files.client_cert.read_text(), files.client_key.read_text(), "namespace ns"
    )
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_the_connection_verifies_the_server_name_it_is_given() -> None:
    context = ssl.create_default_context()
    named = TlsConnection(tls_context=context, server_name="redis.internal", host="10.0.0.1")
    assert named._connection_arguments()["server_hostname"] == "redis.internal"
    plain = TlsConnection(tls_context=context, host="redis.example")
    arguments = plain._connection_arguments()
    assert (arguments["server_hostname"], arguments["ssl"]) == ("redis.example", context)


def test_fingerprints_tell_credentials_apart() -> None:
    assert fingerprint("u", "p") != fingerprint(None, "p")
    assert fingerprint("u", "p") != fingerprint("up", "")
    assert fingerprint("u", "p") == fingerprint("u", "p")


def test_a_detour_checks_the_certificate_against_the_in_cluster_name() -> None:
    settings = OperatorSettings(
        redis=RedisDefaults(address="redis.platform.svc:6379"),
        redis_operator_address="127.0.0.1:16379",
    )
    body = {
        "metadata": {"name": "a", "namespace": "ns"},
        "spec": {"userId": "u", "workload": {"image": "i"}, "redis": {"tls": {}}},
    }
    target = QueueTarget.of(session_from_body(body, settings), settings)
    assert (target.host, target.port, target.server_name) == (
        "127.0.0.1",
        16379,
        "redis.platform.svc",
    )
    body["spec"]["redis"]["tls"] = {"serverName": "redis.internal"}  # type: ignore[index]
    target = QueueTarget.of(session_from_body(body, settings), settings)
    assert target.server_name == "redis.internal"


def test_credentials_never_print_their_values() -> None:
    text = repr(Credentials("app-user", "s3cret-pw", ssl.create_default_context(), None, "fp"))
    assert "app-user" not in text
    assert "s3cret-pw" not in text
