"""Certificates and keys for a throwaway control plane.

Everything is signed by one CA made per cluster and valid for a day: these
clusters live for minutes, and nothing outside the temporary directory trusts them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


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
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("usersession-localcluster-ca")

    def leaf(
        cn: str,
        org: str | None,
        usage: x509.ObjectIdentifier,
        sans: list[x509.GeneralName] | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        return _leaf(ca_key, ca_cert, _name(cn, org), usage, sans)

    server_cert, server_key = leaf(
        "kube-apiserver",
        None,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.96.0.1")),
        ],
    )
    # system:masters bypasses RBAC: the harness and the control-plane components
    # act as cluster admin; tests that need less privilege impersonate.
    admin_cert, admin_key = leaf("admin", "system:masters", ExtendedKeyUsageOID.CLIENT_AUTH)
    keda_cert, keda_key = leaf(
        "keda-operator",
        None,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    # Whoever serves the fast-wake path on loopback: the operator, here.
    push_cert, push_key = leaf(
        "usersession-operator-push",
        None,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    sa_key = _key()

    pki = Pki(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
        keda_cert_dir=directory / "keda",
        keda_ca_dir=directory / "keda-trusted",
        push_tls_dir=directory / "push",
    )
    _write_cert(pki.ca_cert, ca_cert)
    _write_cert(pki.server_cert, server_cert)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.admin_cert, admin_cert)
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.sa_key, sa_key)
    pki.keda_cert_dir.mkdir(exist_ok=True)
    _write_cert(pki.keda_cert_dir / "ca.crt", ca_cert)
    _write_cert(pki.keda_cert_dir / "tls.crt", keda_cert)
    _write_key(pki.keda_cert_dir / "tls.key", keda_key)
    pki.keda_ca_dir.mkdir(exist_ok=True)
    _write_cert(pki.keda_ca_dir / "ca.crt", ca_cert)
    pki.push_tls_dir.mkdir(exist_ok=True)
    _write_cert(pki.push_tls_dir / "tls.crt", push_cert)
    _write_key(pki.push_tls_dir / "tls.key", push_key)
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
    files = RedisTlsFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        wrong_ca_cert=directory / "wrong-ca.crt",
    )
    ca_key, ca_cert = _ca("usersession-redis-ca")
    _, wrong_ca = _ca("usersession-redis-wrong-ca")

    def leaf(
        cn: str, usage: x509.ObjectIdentifier, sans: list[x509.GeneralName]
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        return _leaf(ca_key, ca_cert, _name(cn), usage, sans)

    server_cert, server_key = leaf(
        "redis",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [
            x509.DNSName("localhost"),
            x509.DNSName(REDIS_SERVER_NAME),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    client_cert, client_key = leaf(
        "usersession", ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName("usersession")]
    )
    _write_cert(files.ca_cert, ca_cert)
    _write_cert(files.wrong_ca_cert, wrong_ca)
    _write_cert(files.server_cert, server_cert)
    _write_key(files.server_key, server_key)
    _write_cert(files.client_cert, client_cert)
    _write_key(files.client_key, client_key)
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
