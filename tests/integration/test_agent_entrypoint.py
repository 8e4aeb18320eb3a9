"""The real ``kubetrove-agent`` entry point as a subprocess: flags from env, secrets from files, JSON logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import Grant, Paths, Privilege
from tests.integration.agent_process import agent_env
from tests.integration.servers._proc import free_port
from tests.integration.servers.mariadb import MariaDBServer

TOKEN = "entrypoint-token-0123456789"
USER_PASSWORD = "User-Secret-42!"


def text(path: Path) -> str:
    return path.read_text()


async def wait_healthy(url: str, proc: asyncio.subprocess.Process, stderr: Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            assert proc.returncode is None, f"agent exited: {text(stderr)}"
            try:
                async with session.get(url + Paths.HEALTHZ) as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"agent never became healthy: {text(stderr)}")


async def test_entry_point_serves_and_never_logs_secrets(mariadb: MariaDBServer, tmp_path: Path) -> None:
    port = free_port()
    env = {**agent_env(mariadb, tmp_path, port, TOKEN), "KUBETROVE_LOG_LEVEL": "DEBUG"}
    stderr = tmp_path / "agent.log"
    agent_bin = Path(sys.executable).parent / "kubetrove-agent"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            str(agent_bin), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, proc, stderr)
        async with AgentClient(url, TOKEN) as client:
            assert (await client.readyz()).ok
            assert (await client.status()).engine == "mariadb"
            await client.ensure_database("ep")
            await client.ensure_user(
                "ep_user", USER_PASSWORD, [Grant(database="ep", privileges=[Privilege.READ])]
            )
            with pytest.raises(AgentError) as bad:  # refused input: not echoed, not logged
                await client.set_source("bad host';", 3306, "u", USER_PASSWORD)
            assert bad.value.status == 400
        async with AgentClient(url, "wrong-token") as intruder:
            with pytest.raises(AgentError) as denied:
                await intruder.status()
            assert denied.value.status == 401
        async with aiohttp.ClientSession() as session, session.get(url + Paths.METRICS) as reply:
            metrics = await reply.text()
        assert 'kubetrove_engine_up{engine="mariadb"} 1.0' in metrics
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    log = text(stderr)
    records = [json.loads(line) for line in log.splitlines()]  # every line is one JSON object
    assert any(r.get("path") == "/v1/users/ep_user" and r.get("status") == 200 for r in records)
    for secret in (TOKEN, mariadb.password, USER_PASSWORD):
        assert secret not in log
    assert mariadb.query("SELECT User FROM mysql.user WHERE User = 'ep_user'")
