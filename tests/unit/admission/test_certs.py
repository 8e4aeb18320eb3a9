"""runtime/certs.py: the CA and serving certificate pass a real TLS handshake with hostname checks."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from kubetrove.runtime import certs


async def handshake(cert: certs.ServingCert, tmp: Path, server_name: str) -> bytes:
    certfile, keyfile = certs.write(cert, tmp / "tls")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certfile, keyfile)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cadata=cert.ca.decode())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname=server_name)  # fmt: skip
        data = await reader.read()
        writer.close()
        return data
    finally:
        server.close()


async def test_the_api_server_s_view_verifies(tmp_path: Path) -> None:
    cert = certs.issue(["kt-webhook.kt-system.svc", "127.0.0.1"])
    assert await handshake(cert, tmp_path, "kt-webhook.kt-system.svc") == b"ok"
    parsed = x509.load_pem_x509_certificate(cert.cert)
    sans = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["kt-webhook.kt-system.svc"]
    assert stat.S_IMODE((tmp_path / "tls" / "tls.key").stat().st_mode) == 0o600


async def test_another_name_or_another_ca_is_refused(tmp_path: Path) -> None:
    cert = certs.issue(["kt-webhook.kt-system.svc"])
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(cert, tmp_path, "evil.example")
    other = certs.issue(["kt-webhook.kt-system.svc"])
    mixed = certs.ServingCert(ca=other.ca, cert=cert.cert, key=cert.key)
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(mixed, tmp_path / "b", "kt-webhook.kt-system.svc")


def test_no_hosts_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one host"):
        certs.issue([])


async def test_a_wildcard_server_certificate_of_a_long_lived_ca_verifies(tmp_path: Path) -> None:
    ca = certs.new_ca("kubetrove agents CA")
    leaf = certs.sign(ca, ["*.db-headless.team.svc", "*.db-headless.team.svc.cluster.local"])
    served = certs.ServingCert(ca=ca.cert, cert=leaf.cert, key=leaf.key)
    assert await handshake(served, tmp_path, "db-1.db-headless.team.svc") == b"ok"
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(served, tmp_path / "b", "db-1.other-headless.team.svc")


def test_a_client_certificate_names_its_holder_and_is_for_client_auth_only() -> None:
    ca = certs.new_ca("kubetrove agents CA")
    leaf = x509.load_pem_x509_certificate(certs.sign(ca, ["kubetrove-operator"], client=True).cert)
    assert leaf.subject.rfc4514_string() == "CN=kubetrove-operator"
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]


def test_issued_by_tells_this_ca_from_another_and_no_leaf_outlives_its_ca() -> None:
    ca, other = certs.new_ca("a"), certs.new_ca("b")
    leaf = certs.sign(ca, ["x.svc"], validity=certs.VALIDITY * 10)
    assert certs.issued_by(leaf.cert, ca.cert)
    assert not certs.issued_by(leaf.cert, other.cert)
    assert certs.not_after(leaf.cert) <= certs.not_after(ca.cert)
    with pytest.raises(ValueError, match="at least one name"):
        certs.sign(ca, [])


async def test_strict_x509_verification_accepts_the_chain_both_ways(tmp_path: Path) -> None:
    """Python 3.13 turns on VERIFY_X509_STRICT by default (the trixie agent images run 3.13): the CA and
    every certificate it signs must carry key identifiers, on the server's and on the client's side."""
    ca = certs.new_ca("kubetrove agents CA")
    server = certs.sign(ca, ["*.db-headless.ns.svc"])
    client = certs.sign(ca, ["kubetrove-operator"], client=True)
    certfile, keyfile = certs.write(server, tmp_path / "server")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    server_ctx.load_cert_chain(certfile, keyfile)
    server_ctx.load_verify_locations(cadata=ca.cert.decode())
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    peers: list[object] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peercert"))
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = listener.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cadata=ca.cert.decode())
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    client_ctx.load_cert_chain(*certs.write(client, tmp_path / "client"))
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="db-0.db-headless.ns.svc"
        )
        assert await reader.read() == b"ok"
        writer.close()
    finally:
        listener.close()
    assert peers and peers[0]
