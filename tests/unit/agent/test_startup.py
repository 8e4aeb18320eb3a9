"""Start-up pieces: the driver registry, the token file, TLS, and the entry point's flags."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from kubetrove.agent import auth, main
from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import REGISTRY, make_driver
from kubetrove.api.common import Engine
from tests.unit.agent.conftest import TOKEN
from tests.unit.agent.fake_driver import FakeDriver


def test_every_engine_has_a_driver_named_after_it() -> None:
    assert set(REGISTRY) == {e.value for e in Engine}
    for name in REGISTRY:
        assert make_driver(name, EngineConfig()).engine == name  # building connects to nothing
    with pytest.raises(ValueError, match="unknown engine"):
        make_driver("oracle", EngineConfig())


def test_engine_config_never_prints_the_password() -> None:
    assert "hunter2" not in repr(EngineConfig(password="hunter2"))


def test_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    token = auth.TokenFile(path)
    assert token() == "first-token"
    path.write_text("second-token-longer\n")
    os.utime(path, ns=(1, 1))  # a new mtime even within the clock's granularity
    assert token() == "second-token-longer"
    path.write_text("")
    os.utime(path, ns=(2, 2))
    with pytest.raises(ValueError, match="empty"):
        token()


def test_token_matching() -> None:
    assert auth.token_matches("Bearer abc", "abc") and auth.token_matches("bearer  abc ", "abc")
    for header in (None, "", "abc", "Basic abc", "Bearer abcd", "Bearer ab"):
        assert not auth.token_matches(header, "abc")
    assert not auth.token_matches("Bearer ", "")


def test_flags_come_from_env_and_secrets_must_be_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("engine-pass\n")
    monkeypatch.setenv("KUBETROVE_ENGINE", "postgresql")
    monkeypatch.setenv("KUBETROVE_AGENT_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("KUBETROVE_ENGINE_PASSWORD_FILE", str(tmp_path / "pw"))
    args = main.parse_args([])
    assert (args.engine, args.port, args.engine_host) == ("postgresql", 8432, "127.0.0.1")
    assert main.engine_password(args) == "engine-pass"
    with pytest.raises(SystemExit):
        main.parse_args(["--tls-cert", "c.pem"])  # a key is needed too
    monkeypatch.delenv("KUBETROVE_AGENT_TOKEN_FILE")
    with pytest.raises(SystemExit):
        main.parse_args([])  # no token, no agent


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=agent"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_serves_https_only(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    runner = web.AppRunner(make_app(FakeDriver(), TOKEN))
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(
        runner, "127.0.0.1", port, ssl_context=auth.server_ssl_context(str(cert), str(key))
    ).start()
    try:
        trusted = ssl.create_default_context(cafile=str(cert))
        async with AgentClient(f"https://127.0.0.1:{port}", TOKEN, ssl_context=trusted) as client:
            assert (await client.status()).engine == "mariadb"
        async with AgentClient(f"https://127.0.0.1:{port}", TOKEN, retries=0) as untrusting:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await untrusting.status()
        async with AgentClient(f"http://127.0.0.1:{port}", TOKEN, retries=0) as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.status()
    finally:
        await runner.cleanup()
