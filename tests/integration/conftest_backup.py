"""Backup fixtures: a real MinIO for the session, helpers for POST/GET /v1/backups on a real agent."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from kubetrove.agent.protocol import BackupPhase, BackupReply, BackupRequest, Paths
from tests.integration.servers.minio import MinioServer, start_minio

__all__ = ["minio"]  # the fixture; tests import the helpers by name

CREATED_AT = "2026-11-20T03:00:00Z"


@pytest.fixture(scope="session")
def minio() -> Iterator[MinioServer]:
    """One MinIO for the session (each test writes under its own prefix)."""
    server = start_minio()
    yield server
    server.stop()


async def post_backup(url: str, token: str, request: BackupRequest) -> tuple[int, BackupReply]:
    """POST /v1/backups; the status code and the reply."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + Paths.BACKUPS, data=request.model_dump_json(), headers=headers) as response,
    ):
        text = await response.text()
        assert response.status in (200, 202), text
        return response.status, BackupReply.model_validate_json(text)


async def get_backup(url: str, token: str, backup_id: str) -> BackupReply:
    """GET /v1/backups/{id}."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + Paths.BACKUP.format(id=backup_id), headers=headers) as response,
    ):
        text = await response.text()
        assert response.status == 200, text
        return BackupReply.model_validate_json(text)


async def wait_backup(url: str, token: str, backup_id: str, limit: float = 300) -> BackupReply:
    """Poll GET until the backup is Completed or Failed."""
    deadline = time.monotonic() + limit
    while True:
        reply = await get_backup(url, token, backup_id)
        if reply.phase in (BackupPhase.COMPLETED, BackupPhase.FAILED):
            return reply
        assert time.monotonic() < deadline, f"backup {backup_id} still {reply.phase} after {limit}s"
        await asyncio.sleep(0.2)


async def backup(url: str, token: str, request: BackupRequest) -> BackupReply:
    """Start a backup through the agent's API and wait for its outcome."""
    await post_backup(url, token, request)
    return await wait_backup(url, token, request.id)


def known_rows(n: int) -> list[tuple[object, ...]]:
    """Predictable rows (id, unicode name, decimal text, NULL-or-note, binary) for exact comparisons."""
    return [
        (i, f"item-{i}-ünï", f"{i}.{i % 100:02d}", None if i % 7 else f"note {i}", bytes([i % 256] * 8))
        for i in range(n)
    ]


def children(parent: int, name: str) -> list[int]:
    """PIDs of ``parent``'s child processes whose executable name is ``name`` (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == parent and comm == name[:15]:
            found.append(int(proc.name))
    return found


async def kill_child_when_started(name: str, parent: int | None = None, limit: float = 60) -> int:
    """SIGKILL (by PID) the first child process called ``name`` as soon as it appears; return its PID."""
    parent = os.getpid() if parent is None else parent
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for pid in children(parent, name):
            os.kill(pid, signal.SIGKILL)
            return pid
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {name} process started within {limit}s")


async def kill_tool_mid_backup(url: str, token: str, request: BackupRequest, tool: str) -> BackupReply:
    """Start a backup, SIGKILL its tool as soon as it runs; the backup must end Failed, saying so."""
    await post_backup(url, token, request)
    await kill_child_when_started(tool)
    reply = await wait_backup(url, token, request.id)
    assert reply.phase is BackupPhase.FAILED
    assert reply.error and f"{tool} was killed by signal 9" in reply.error
    return reply


def listed_keys(server: MinioServer, prefix: str) -> list[str]:
    """Every object key under ``prefix`` (what a listing shows: completed objects only)."""
    reply = server.client().list_objects_v2(Bucket=server.bucket, Prefix=prefix)
    return sorted(obj["Key"] for obj in reply.get("Contents", []))


def corrupt_object(server: MinioServer, key: str, offset: int = 1000) -> None:
    """Flip one byte of a stored object, in place (same size)."""
    client = server.client()
    body = bytearray(client.get_object(Bucket=server.bucket, Key=key)["Body"].read())
    body[min(offset, len(body) - 1)] ^= 0xFF
    client.put_object(Bucket=server.bucket, Key=key, Body=bytes(body))
