"""SIGKILL the agent process mid-backup: nothing is listed as complete; a new agent redoes it cleanly."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, RestoreRequest
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import (
    CREATED_AT,
    children,
    get_backup,
    listed_keys,
    post_backup,
    wait_backup,
)
from tests.integration.servers._proc import free_port, stop
from tests.integration.servers.mariadb import ADMIN, MariaDBServer
from tests.integration.servers.minio import MinioServer

PREFIX = "agent-killed"


def start_agent_process(server: MariaDBServer, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """``python -m kubetrove.agent.main`` as its own process (so it can be SIGKILLed); its URL and token."""
    token = secrets.token_urlsafe(16)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "kubetrove.agent.main",
        "--engine",
        "mariadb",
        "--engine-port",
        str(server.port),
    ]
    argv += [
        "--engine-user",
        ADMIN,
        "--token-file",
        str(token_file),
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "KUBETROVE_ENGINE_PASSWORD": server.password},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "agent.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return proc, url, token
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
            time.sleep(0.2)


async def test_agent_killed_mid_backup(
    mariadb_factory: Callable[[], MariaDBServer], minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    server = mariadb_factory()
    server.query("CREATE DATABASE big")
    server.query("CREATE TABLE big.t (id INT PRIMARY KEY, pad CHAR(255)) ENGINE=InnoDB")
    server.query(
        "INSERT INTO big.t SELECT seq, REPEAT(MD5(seq), 7) FROM big.seq_1_to_200000"
    )  # ~60 MiB on disk
    request = BackupRequest(
        id="crash", method=BackupMethod.PHYSICAL, target=minio.target(PREFIX), created_at=CREATED_AT
    )
    proc, url, token = start_agent_process(server, tmp_path)
    try:
        await post_backup(url, token, request)
        for _ in range(6000):  # until the tool has streamed its first bytes (a multipart upload exists)
            if (await get_backup(url, token, "crash")).bytes_done > 0:
                break
            await asyncio.sleep(0.01)
        tools = children(proc.pid, "mariadb-backup")
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up code of the agent runs
        proc.wait(10)
        for pid in tools:  # the orphaned tool: stop it by its PID as well
            os.kill(pid, signal.SIGKILL)
    finally:
        stop(proc)

    assert listed_keys(minio, f"{PREFIX}/") == []  # the in-flight multipart upload is not an object
    with_uploads = minio.client().list_multipart_uploads(
        Bucket=minio.bucket, Prefix=f"{PREFIX}/crash/backup.xbstream"
    )  # MinIO: whole key
    assert len(with_uploads.get("Uploads", [])) == 1
    restore_req = RestoreRequest(
        backup_id="crash",
        source=request.target,
        engine="mariadb",
        major="10.11",
        data_dir=str(tmp_path / "d"),
    )
    with pytest.raises(restore_mod.RestoreRefused, match="missing or incomplete"):
        restore_mod.restore(restore_req)

    # The operator re-asks a (restarted) agent for the same id: it starts over and cleans the leftovers.
    agent = await start_agent("mariadb", server.engine_config())
    status, _ = await post_backup(agent.url, agent.token, request)
    assert status == 202
    assert (await wait_backup(agent.url, agent.token, "crash")).phase is BackupPhase.COMPLETED
    assert listed_keys(minio, f"{PREFIX}/") == [
        f"{PREFIX}/crash/backup.xbstream",
        f"{PREFIX}/crash/manifest.json",
    ]
    leftovers = minio.client().list_multipart_uploads(
        Bucket=minio.bucket, Prefix=f"{PREFIX}/crash/backup.xbstream"
    )  # MinIO: whole key
    assert leftovers.get("Uploads", []) == []
