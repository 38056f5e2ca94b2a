"""Certificates and keys for a throwaway control plane.

Everything is signed by one CA made per cluster and valid for a day: these
clusters live for minutes, and nothing outside the temporary directory trusts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH

_VALIDITY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path  # service-account token signing key (private)
    sa_pub: Path
    keda_cert_dir: Path  # tls.crt, tls.key, ca.crt: KEDA's --cert-dir (its gRPC metrics service)
    keda_ca_dir: Path  # ca.crt alone: KEDA's --ca-dir, the CAs its scalers trust
    push_tls_dir: Path  # tls.crt, tls.key: the operator's push server (USERSESSION_PUSH_TLS_DIR)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _save(
    stem: Path,
    cert: x509.Certificate | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> None:
    """stem.crt and stem.key, the key readable by its owner only."""
    if cert is not None:
        stem.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path = stem.with_suffix(".key")
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def make_pki(directory: Path) -> Pki:
    # In the order of Pki's fields.
    files = "ca.crt apiserver.crt apiserver.key admin.crt admin.key sa.key sa.pub keda"
    pki = Pki(*(directory / name for name in f"{files} keda-trusted push".split()))
    for folder in (directory, pki.keda_cert_dir, pki.keda_ca_dir, pki.push_tls_dir):
        folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("usersession-localcluster-ca")
    for trusting in (directory, pki.keda_cert_dir, pki.keda_ca_dir):
        _save(trusting / "ca", ca_cert)
    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]

    def leaf(stem: Path, cn: str, usage: x509.ObjectIdentifier, **kw: Any) -> None:
        """A certificate and key signed by the CA, saved as stem.crt and stem.key."""
        org, sans = kw.get("org"), kw.get("sans", loopback)
        _save(stem, *_leaf(ca_key, ca_cert, _name(cn, org), usage, sans))

    in_cluster = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    service_ip = x509.IPAddress(ipaddress.ip_address("10.96.0.1"))
    apiserver_names = [*loopback, *map(x509.DNSName, in_cluster), service_ip]
    leaf(directory / "apiserver", "kube-apiserver", SERVER_AUTH, sans=apiserver_names)
    # system:masters bypasses RBAC: the harness and the control-plane components
    # act as cluster admin; tests that need less privilege impersonate.
    leaf(directory / "admin", "admin", CLIENT_AUTH, org="system:masters", sans=None)
    leaf(pki.keda_cert_dir / "tls", "keda-operator", SERVER_AUTH)
    # Whoever serves the fast-wake path on loopback: the operator, here.
    leaf(pki.push_tls_dir / "tls", "usersession-operator-push", SERVER_AUTH)
    sa_key = _key()
    _save(directory / "sa", key=sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


@dataclass(frozen=True)
class RedisTlsFiles:
    """A Redis server's TLS material, under a CA of its own (not the cluster's, which
    KEDA already trusts through its --ca-dir: a wrong CA must really be wrong)."""

    ca_cert: Path
    server_cert: Path  # for 127.0.0.1, localhost and SERVER_NAME
    server_key: Path
    client_cert: Path  # for mutual TLS: what sessions present
    client_key: Path
    wrong_ca_cert: Path  # a CA that signed nothing here


REDIS_SERVER_NAME = "redis.usersession.test"


def make_redis_tls(directory: Path) -> RedisTlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    names = "ca.crt server.crt server.key client.crt client.key wrong-ca.crt"  # the fields' order
    files = RedisTlsFiles(*(directory / name for name in names.split()))
    ca_key, ca_cert = _ca("usersession-redis-ca")
    _save(directory / "ca", ca_cert)
    _save(directory / "wrong-ca", _ca("usersession-redis-wrong-ca")[1])
    server_names = ["localhost", REDIS_SERVER_NAME]
    sans = [*map(x509.DNSName, server_names), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    _save(directory / "server", *_leaf(ca_key, ca_cert, _name("redis"), SERVER_AUTH, sans))
    client_sans: list[x509.GeneralName] = [x509.DNSName("usersession")]
    client = _leaf(ca_key, ca_cert, _name("usersession"), CLIENT_AUTH, client_sans)
    _save(directory / "client", *client)
    return files


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for one server or client usage, signed by the CA."""
    key = _key()
    builder = _builder(subject, ca_cert.subject, key.public_key()).add_extension(
        x509.ExtendedKeyUsage([usage]), critical=False
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key
