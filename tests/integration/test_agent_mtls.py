"""The real ``kubetrove-agent`` entry point with mutual TLS, over real TLS, in front of a real MariaDB.

``--tls-cert/--tls-key/--tls-client-ca`` from a directory laid out like a mounted Secret (symlinks through
``..data``): the operator (a client certificate from the CA, the token) is served; a client without a
certificate gets 401 on ``/v1`` and 200 from the probes; a certificate from another CA and plain HTTP fail;
a kubelet-style swap of the files is served to new connections without a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import Paths
from kubetrove.runtime import certs
from tests.integration.agent_process import agent_env
from tests.integration.servers._proc import free_port
from tests.integration.servers.mariadb import MariaDBServer

TOKEN = "mtls-token-0123456789"
NAME = "mariadb-0.mariadb.ns.svc"  # the certificate's name; the agent is reached at 127.0.0.1


def publish(mount: Path, version: str, ca: certs.KeyPair, server: certs.KeyPair) -> None:
    """Write the files into ``mount/version`` and point ``mount/..data`` at it, as the kubelet does."""
    certs.write(certs.ServingCert(ca=ca.cert, cert=server.cert, key=server.key), mount / version)
    (mount / version / "ca.crt").write_bytes(ca.cert)
    (mount / "..data_tmp").symlink_to(version)
    os.replace(mount / "..data_tmp", mount / "..data")
    for name in ("tls.crt", "tls.key", "ca.crt"):
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")


def client_context(trust: Path, pair: certs.KeyPair | None, directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(trust))
    if pair is not None:
        certfile, keyfile = certs.write(certs.ServingCert(ca=b"", cert=pair.cert, key=pair.key), directory)
        context.load_cert_chain(certfile, keyfile)
    return context


async def served_name(port: int, trust: Path, hostname: str) -> str:
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ssl.create_default_context(cafile=str(trust)), server_hostname=hostname
    )
    try:
        return str(dict(p[0] for p in writer.get_extra_info("peercert")["subject"])["commonName"])
    finally:
        writer.close()


def text(path: Path) -> str:
    return path.read_text()


async def wait_healthy(client: AgentClient, proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(200):
        assert proc.returncode is None, f"agent exited: {text(log)}"
        try:
            if (await client.healthz()).ok:
                return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"agent never became healthy: {text(log)}")


async def test_entry_point_with_client_certificates(mariadb: MariaDBServer, tmp_path: Path) -> None:
    ca, other = certs.new_ca("kubetrove agents CA"), certs.new_ca("another CA")
    mount = tmp_path / "tls"
    mount.mkdir()
    publish(mount, "..v1", ca, certs.sign(ca, [NAME]))
    trust = tmp_path / "trust.crt"
    trust.write_bytes(ca.cert)
    operator = client_context(trust, certs.sign(ca, ["kubetrove-operator"], client=True), tmp_path / "op")
    anonymous = client_context(trust, None, tmp_path)
    stranger = client_context(trust, certs.sign(other, ["kubetrove-operator"], client=True), tmp_path / "x")
    port = free_port()
    env = agent_env(mariadb, tmp_path, port, TOKEN)
    flags = [f"--tls-{flag}={mount / name}" for flag, name in (("cert", "tls.crt"), ("key", "tls.key"))]
    flags.append(f"--tls-client-ca={mount / 'ca.crt'}")
    log = tmp_path / "agent.log"
    agent_bin = Path(sys.executable).parent / "kubetrove-agent"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            str(agent_bin), *flags, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err
        )
    url = f"https://127.0.0.1:{port}"
    try:
        async with AgentClient(url, TOKEN, ssl_context=anonymous, server_hostname=NAME) as probe:
            await wait_healthy(probe, proc, log)
            assert (await probe.readyz()).ok  # the kubelet's probes need no client certificate
            with pytest.raises(AgentError) as refused:
                await probe.status()
            assert (refused.value.status, refused.value.reply.detail) == (401, "client certificate required")
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + Paths.METRICS, ssl=anonymous, server_hostname=NAME) as reply,
        ):
            assert reply.status == 200 and 'kubetrove_engine_up{engine="mariadb"} 1.0' in await reply.text()
        async with AgentClient(url, TOKEN, ssl_context=operator, server_hostname=NAME) as client:
            assert (await client.status()).engine == "mariadb"
            assert (await client.ensure_database("mtls")).detail in ("created", "exists")
        async with AgentClient(url, "wrong-token", ssl_context=operator, server_hostname=NAME) as intruder:
            with pytest.raises(AgentError) as denied:  # a certificate does not replace the token
                await intruder.status()
            assert denied.value.status == 401
        async with AgentClient(url, TOKEN, ssl_context=stranger, server_hostname=NAME, retries=0) as other_ca:
            with pytest.raises(aiohttp.ClientError):
                await other_ca.healthz()
        async with AgentClient(f"http://127.0.0.1:{port}", TOKEN, retries=0) as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.healthz()
        # The kubelet's swap of the Secret's files: new connections get the new certificate, no restart.
        publish(mount, "..v2", ca, certs.sign(ca, ["mariadb-0.renamed"]))
        for _ in range(150):  # the agent looks every 10 s
            try:
                assert await served_name(port, trust, "mariadb-0.renamed") == "mariadb-0.renamed"
                break
            except ssl.SSLCertVerificationError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the rotated certificate was never served")
        async with AgentClient(
            url, TOKEN, ssl_context=operator, server_hostname="mariadb-0.renamed"
        ) as client:
            assert (await client.status()).engine == "mariadb"
        assert proc.returncode is None  # the same process
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["msg"] == "agent starting" and r.get("client_certificates") is True for r in records)
    assert any(r["msg"] == "TLS files re-loaded" for r in records)
    assert mariadb.query("SHOW DATABASES LIKE 'mtls'")
