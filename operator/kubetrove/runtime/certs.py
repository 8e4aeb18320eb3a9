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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)  # rotated at every start long before; a year bounds a leak
SKEW = datetime.timedelta(minutes=5)  # the API server's clock may be a little behind ours


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, both PEM."""

    cert: bytes
    key: bytes


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


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    return KeyPair(
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def new_ca(
    common_name: str, now: datetime.datetime | None = None, validity: datetime.timedelta = VALIDITY
) -> KeyPair:
    """A self-signed CA (ECDSA P-256) that may sign leaf certificates only (path length 0)."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _pem(cert, key)


def sign(
    ca: KeyPair,
    hosts: list[str],
    *,
    client: bool = False,
    also_client: bool = False,
    now: datetime.datetime | None = None,
    validity: datetime.timedelta = VALIDITY,
) -> KeyPair:
    """A new key and a certificate ``ca`` signs for it: a server certificate whose SANs are ``hosts``
    (DNS names, wildcards or IP addresses; the first is the common name), or with ``client`` a client
    certificate whose common name is ``hosts[0]``. ``also_client``: a server certificate that may also
    authenticate as a client (replica set members present theirs to each other). Never valid past the CA."""
    if not hosts:
        raise ValueError("a certificate needs at least one name")
    now = now or datetime.datetime.now(datetime.UTC)
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    if also_client and not client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(min(now + validity, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        # Key identifiers (RFC 5280 4.2.1.1-2): OpenSSL 3's strict verification, the default of Python
        # 3.13's contexts (the trixie-based agent images), refuses a chain without them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if not client:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
    return _pem(builder.sign(ca_key, hashes.SHA256()), key)


def not_after(cert_pem: bytes) -> datetime.datetime:
    """When a PEM certificate expires (UTC)."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def dns_names(cert_pem: bytes) -> list[str]:
    """The DNS names a PEM certificate's subjectAltName lists (none: [])."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(sans.get_values_for_type(x509.DNSName))


def key_matches(cert_pem: bytes, key_pem: bytes) -> bool:
    """True if ``key_pem`` (unencrypted PEM) is the private key of ``cert_pem``'s public key. Raises
    ValueError when either is not PEM of its kind."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError as exc:  # an encrypted key: no engine here is given a passphrase
        raise ValueError(str(exc)) from None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki))


def pkcs8(key_pem: bytes) -> bytes:
    """``key_pem`` (unencrypted PEM: PKCS#1, SEC1 or PKCS#8) as an unencrypted PKCS#8 PEM, the one form
    every engine reads (Cassandra's PEM reader takes no other). Raises ValueError if it is not a key."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issued_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """True if ``ca_pem``'s key signed ``cert_pem`` (the leaf belongs to this CA, not an older one)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def issue(hosts: list[str], now: datetime.datetime | None = None) -> ServingCert:
    """A new CA and a certificate it signs for ``hosts`` (DNS names or IP addresses, the first one the
    common name). ECDSA P-256: small, fast, and accepted by the API server's Go TLS."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host name or address")
    ca = new_ca("kubetrove admission CA", now)
    leaf = sign(ca, hosts, now=now)
    return ServingCert(ca=ca.cert, cert=leaf.cert, key=leaf.key)


def write(cert: ServingCert | KeyPair, directory: Path) -> tuple[Path, Path]:
    """Write the certificate and key into ``directory`` (created 0700; the key 0600): (certfile, keyfile)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_bytes(cert.cert)
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(cert.key)
    return certfile, keyfile
