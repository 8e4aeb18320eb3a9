"""Mutual TLS on real sockets: client certificates on /v1, none needed for the probes, files re-loaded."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubetrove.agent import auth, main
from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import TOKEN_HEADER, Paths, bearer
from kubetrove.runtime import certs
from tests.unit.agent.conftest import TOKEN
from tests.unit.agent.fake_driver import FakeDriver

DAY = datetime.timedelta(days=1)
NAME = "agent-0.agent.ns.svc"  # not the URL's host (127.0.0.1): the client names it with server_hostname


class Mount:
    """A directory laid out like a mounted Secret: files are symlinks through ``..data``, which the
    kubelet swaps atomically to a new timestamped directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._versions = count()
        root.mkdir()

    def publish(self, ca: certs.KeyPair, server: certs.KeyPair, client_ca: bytes) -> None:
        version = self.root / f"..v{next(self._versions)}"
        certs.write(certs.ServingCert(ca=ca.cert, cert=server.cert, key=server.key), version)
        (version / "ca.crt").write_bytes(client_ca)
        self.publish_files(version)

    def publish_files(self, version: Path) -> None:
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")
        for name in ("tls.crt", "tls.key", "ca.crt"):
            if not (self.root / name).is_symlink():
                (self.root / name).symlink_to(f"..data/{name}")

    def files(self) -> tuple[str, str, str]:
        return str(self.root / "tls.crt"), str(self.root / "tls.key"), str(self.root / "ca.crt")


@dataclass
class Pki:
    ca: certs.KeyPair
    client_pair: certs.KeyPair
    trust: str  # the CA file clients verify the agent with
    client: ssl.SSLContext  # the operator: a certificate from the agent's client CA
    anonymous: ssl.SSLContext  # verifies the agent, presents no certificate
    stranger: ssl.SSLContext  # a client certificate from another CA
    mount: Mount


def client_context(trust: str, pair: certs.KeyPair | None, directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=trust)
    if pair is not None:
        certfile, keyfile = certs.write(certs.ServingCert(ca=b"", cert=pair.cert, key=pair.key), directory)
        context.load_cert_chain(certfile, keyfile)
    return context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, other = certs.new_ca("kubetrove agents CA"), certs.new_ca("someone else's CA")
    trust = tmp_path / "trust.crt"
    trust.write_bytes(ca.cert)
    mount = Mount(tmp_path / "mount")
    mount.publish(ca, certs.sign(ca, [NAME]), ca.cert)
    client = certs.sign(ca, ["kubetrove-operator"], client=True)
    return Pki(
        ca=ca,
        client_pair=client,
        trust=str(trust),
        client=client_context(str(trust), client, tmp_path / "op"),
        anonymous=client_context(str(trust), None, tmp_path),
        stranger=client_context(
            str(trust), certs.sign(other, ["kubetrove-operator"], client=True), tmp_path / "x"
        ),
        mount=mount,
    )


Serve = Callable[[auth.ServerTLS], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(tls: auth.ServerTLS) -> str:
        runner = web.AppRunner(make_app(FakeDriver(), TOKEN, tls=tls))
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context).start()
        return f"https://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def get(
    url: str, context: ssl.SSLContext, path: str, token: str = TOKEN, hostname: str = NAME
) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url + path, ssl=context, server_hostname=hostname, headers={TOKEN_HEADER: bearer(token)}
        ) as reply,
    ):
        return reply.status, await reply.text()


async def served_name(url: str, trust: str, hostname: str) -> str:
    """The common name of the certificate a NEW connection to ``url`` is served, verified for ``hostname``."""
    port = int(url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=trust)
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=hostname)
    try:
        subject = dict(pair[0] for pair in writer.get_extra_info("peercert")["subject"])
        return str(subject["commonName"])
    finally:
        writer.close()


async def test_v1_needs_a_client_certificate_and_the_token(pki: Pki, serve: Serve) -> None:
    url = await serve(auth.ServerTLS(*pki.mount.files()))
    async with AgentClient(url, TOKEN, ssl_context=pki.client, server_hostname=NAME) as operator:
        assert (await operator.status()).engine == "mariadb"
    async with AgentClient(url, TOKEN, ssl_context=pki.anonymous, server_hostname=NAME) as anonymous:
        with pytest.raises(AgentError) as refused:
            await anonymous.status()
        assert (refused.value.status, refused.value.reply.error) == (401, "unauthorized")
        assert refused.value.reply.detail == "client certificate required"
        assert (await anonymous.healthz()).ok and (await anonymous.readyz()).ok  # the kubelet's probes
    assert (await get(url, pki.anonymous, Paths.METRICS))[0] == 200
    status, body = await get(url, pki.client, Paths.STATUS, token="wrong-token")  # both are needed
    assert status == 401 and "bearer token" in body


async def test_a_certificate_from_another_ca_or_expired_fails_the_handshake(
    pki: Pki, serve: Serve, tmp_path: Path
) -> None:
    url = await serve(auth.ServerTLS(*pki.mount.files()))
    last_week = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=7)
    expired = certs.sign(pki.ca, ["kubetrove-operator"], client=True, now=last_week, validity=DAY)
    for client in (pki.stranger, client_context(pki.trust, expired, tmp_path / "expired")):
        for path in (Paths.STATUS, Paths.HEALTHZ):  # refused in the handshake, before any path is read
            with pytest.raises(aiohttp.ClientError):  # TLS 1.3: the client sees the alert on its first read
                await get(url, client, path)


async def test_plain_http_to_the_tls_port_fails(pki: Pki, serve: Serve) -> None:
    url = await serve(auth.ServerTLS(*pki.mount.files()))
    async with AgentClient(url.replace("https:", "http:"), TOKEN, retries=0) as plain:
        with pytest.raises(aiohttp.ClientError):
            await plain.healthz()


async def test_without_a_client_ca_no_client_certificate_is_asked(pki: Pki, serve: Serve) -> None:
    cert, key, _ = pki.mount.files()
    tls = auth.ServerTLS(cert, key)
    assert not tls.verifies_clients and tls.context.verify_mode == ssl.CERT_NONE
    url = await serve(tls)
    async with AgentClient(url, TOKEN, ssl_context=pki.anonymous, server_hostname=NAME) as client:
        assert (await client.status()).engine == "mariadb"


async def test_an_app_requiring_client_certificates_refuses_plain_http(pki: Pki) -> None:
    server = TestServer(make_app(FakeDriver(), TOKEN, tls=auth.ServerTLS(*pki.mount.files())))
    await server.start_server()
    try:
        async with AgentClient(str(server.make_url("")).rstrip("/"), TOKEN) as client:
            with pytest.raises(AgentError) as refused:
                await client.status()
            assert refused.value.status == 401
            assert (await client.healthz()).ok
    finally:
        await server.close()


async def test_agent_client_verifies_the_name_it_is_given(pki: Pki, serve: Serve) -> None:
    url = await serve(auth.ServerTLS(*pki.mount.files()))
    async with AgentClient(url, TOKEN, ssl_context=pki.client, retries=0) as by_address:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):  # the certificate names NAME only
            await by_address.healthz()
    async with AgentClient(
        url, TOKEN, ssl_context=pki.client, server_hostname="agent-1.agent.ns.svc"
    ) as other:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await other.healthz()


async def test_rotated_files_are_reloaded_into_the_same_context(
    pki: Pki, serve: Serve, tmp_path: Path
) -> None:
    tls = auth.ServerTLS(*pki.mount.files(), interval=3600)  # ticked by hand
    context = tls.context
    url = await serve(tls)
    kept = await KeepAlive.open(url, pki.client)  # established before the rotation, kept across it
    try:
        assert await kept.status() == 200
        assert not tls.try_reload()  # nothing changed
        new_ca = certs.new_ca("kubetrove agents CA 2")
        new_trust = tmp_path / "trust2.crt"
        new_trust.write_bytes(new_ca.cert)
        pki.mount.publish(new_ca, certs.sign(new_ca, ["agent-0.renamed"]), new_ca.cert)
        assert await served_name(url, pki.trust, NAME) == NAME  # not re-loaded yet
        assert tls.try_reload() and tls.context is context
        assert await served_name(url, str(new_trust), "agent-0.renamed") == "agent-0.renamed"
        new_client = client_context(
            str(new_trust), certs.sign(new_ca, ["kubetrove-operator"], client=True), tmp_path / "op2"
        )
        assert (await get(url, new_client, Paths.STATUS, hostname="agent-0.renamed"))[0] == 200
        # The old CA stays trusted until a restart (load_verify_locations only adds): the overlap.
        old_client = client_context(str(new_trust), pki.client_pair, tmp_path / "op1")
        assert (await get(url, old_client, Paths.STATUS, hostname="agent-0.renamed"))[0] == 200
        assert await kept.status() == 200  # the established connection is unaffected
    finally:
        kept.close()


@pytest.mark.parametrize("damage", ["half-written certificate", "certificate of another key"])
async def test_files_that_do_not_load_keep_the_old_ones(
    pki: Pki, serve: Serve, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    tls = auth.ServerTLS(*pki.mount.files(), interval=3600)
    url = await serve(tls)
    renamed = certs.sign(pki.ca, ["agent-0.renamed"])
    broken = pki.mount.root / "..broken"
    certs.write(certs.ServingCert(ca=b"", cert=renamed.cert, key=renamed.key), broken)
    (broken / "ca.crt").write_bytes(pki.ca.cert)
    if damage == "half-written certificate":
        (broken / "tls.crt").write_bytes(renamed.cert[: len(renamed.cert) // 2])
    else:
        (broken / "tls.key").write_bytes(certs.sign(pki.ca, ["x"]).key)
    pki.mount.publish_files(broken)
    with caplog.at_level(logging.WARNING, logger="kubetrove.agent"):
        assert not tls.try_reload()
    assert "keeping the previous ones" in caplog.text
    assert await served_name(url, pki.trust, NAME) == NAME  # still served, and still a working context
    assert (await get(url, pki.client, Paths.STATUS))[0] == 200
    pki.mount.publish(pki.ca, renamed, pki.ca.cert)  # the complete files arrive: the next tick loads them
    assert tls.try_reload()
    assert await served_name(url, pki.trust, "agent-0.renamed") == "agent-0.renamed"


async def test_the_app_reloads_in_the_background(pki: Pki, serve: Serve) -> None:
    url = await serve(auth.ServerTLS(*pki.mount.files(), interval=0.05))
    pki.mount.publish(pki.ca, certs.sign(pki.ca, ["agent-0.renamed"]), pki.ca.cert)
    for _ in range(100):
        with contextlib.suppress(ssl.SSLCertVerificationError):
            assert await served_name(url, pki.trust, "agent-0.renamed") == "agent-0.renamed"
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the new certificate was never served")


def test_client_ca_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBETROVE_ENGINE", "mariadb")
    monkeypatch.setenv("KUBETROVE_AGENT_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(SystemExit):
        main.parse_args(["--tls-client-ca", "ca.crt"])  # client certificates need TLS
    monkeypatch.setenv("KUBETROVE_AGENT_TLS_CLIENT_CA", "/tls/ca.crt")
    args = main.parse_args(["--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key"])
    assert args.tls_client_ca == "/tls/ca.crt"
    assert main.parse_args(["--tls-client-ca", "x", "--tls-cert", "c", "--tls-key", "k"]).tls_client_ca == "x"


class KeepAlive:
    """One TLS connection carrying several HTTP/1.1 requests."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str, context: ssl.SSLContext) -> KeepAlive:
        port = int(url.rsplit(":", 1)[1])
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=NAME))

    async def status(self) -> int:
        self.writer.write(
            f"GET {Paths.STATUS} HTTP/1.1\r\nHost: agent\r\n{TOKEN_HEADER}: {bearer(TOKEN)}\r\n\r\n".encode()
        )
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()
