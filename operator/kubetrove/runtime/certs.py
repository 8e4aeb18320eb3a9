"""The admission webhook's TLS: a private CA and a serving certificate, made by the operator at start.

Why the operator makes them (no cert-manager, no Helm hook, no manual step): the API server only calls
a webhook over HTTPS it can verify, and the operator is the one process that both serves the webhook
and may patch the webhook configurations' ``caBundle`` (its RBAC names them). Each active instance makes
a fresh CA and certificate when it takes the Lease, writes the CA into the configurations, and only then
serves: nothing is stored in a Secret, and a restart rotates everything. The key never leaves the pod
(an emptyDir file readable by the operator's uid alone, which kopf's server loads and re-reads).

Why ``cryptography``: generating an X.509 certificate needs an ASN.1/X.509 library; the standard
library's ``ssl`` can only load one. kopf's own generator needs ``certbuilder`` and ``oscrypto``
(both unmaintained; oscrypto's last release mis-detects some OpenSSL 3 versions). ``cryptography`` is
maintained by the PyCA, ships wheels, and is already pinned for the agent (pymysql's RSA).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)  # rotated at every start long before; a year bounds a leak
SKEW = datetime.timedelta(minutes=5)  # the API server's clock may be a little behind ours


@dataclass(frozen=True)
class ServingCert:
    """PEM of the CA (the configurations' caBundle), the serving certificate, and its private key."""

    ca: bytes
    cert: bytes
    key: bytes


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue(hosts: list[str], now: datetime.datetime | None = None) -> ServingCert:
    """A new CA and a certificate it signs for ``hosts`` (DNS names or IP addresses, the first one the
    common name). ECDSA P-256: small, fast, and accepted by the API server's Go TLS."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host name or address")
    now = now or datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("kubetrove admission CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0][:64]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return ServingCert(
        ca=ca.public_bytes(pem),
        cert=cert.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def write(cert: ServingCert, directory: Path) -> tuple[Path, Path]:
    """Write the certificate and key into ``directory`` (created 0700; the key 0600): (certfile, keyfile)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_bytes(cert.cert)
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(cert.key)
    return certfile, keyfile
