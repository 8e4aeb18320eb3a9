"""The agent loads a LOGICAL backup into a fresh real server (MariaDB 10.11, PostgreSQL 15) at start-up.

What runs in a pod created with ``spec.restoreFrom`` of a logical backup: the agent app with a restore
request (agent/backup/restore_gate.py), its real driver, a real MinIO. ``/readyz`` answers 503 while the
engine is read-only (the gate waits for writes) and while loading, 200 once done; the data is compared
exactly with the source. A corrupt artifact is refused, nothing is loaded and the pod stays unready.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from kubetrove.agent.app import make_app
from kubetrove.agent.backup.restore_gate import RestoreGate, engine_not_writable
from kubetrove.agent.engines.registry import make_driver
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    BackupTarget,
    ErrorReply,
    Paths,
    RestoreProgress,
    RestoreRequest,
    RestoreState,
)
from tests.integration import test_backup_mariadb as maria
from tests.integration import test_backup_postgresql as pg
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import CREATED_AT, backup, corrupt_object
from tests.integration.servers._proc import free_port
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.postgresql import BIN


@dataclass(frozen=True)
class Engine:
    """What differs per engine: the major, the databases dumped, fencing, the exact data read back."""

    name: str
    major: str
    databases: list[str] | None
    artifact: str  # the one artifact corrupted
    fence: Callable[[Any, bool], None]
    rows: Callable[[Any], dict[str, list[tuple[Any, ...]]]]
    has_data: Callable[[Any], bool]


def _maria_fence(server: Any, on: bool) -> None:
    server.query(f"SET GLOBAL read_only = {int(on)}")


def _pg_fence(server: Any, on: bool) -> None:
    server.query(
        "ALTER SYSTEM SET default_transaction_read_only = on"
        if on
        else "ALTER SYSTEM RESET default_transaction_read_only"
    )
    server.query("SELECT pg_reload_conf()")


ENGINES = {
    "mariadb": Engine(
        "mariadb",
        maria.MAJOR,
        None,
        "backup.sql",
        _maria_fence,
        maria.dump_rows,
        lambda s: bool(s.query("SHOW DATABASES LIKE 'shop'")),
    ),
    "postgresql": Engine(
        "postgresql",
        "15",
        list(pg.DBS),
        "shop.pgdump",
        _pg_fence,
        pg.dump_rows,
        lambda s: bool(s.query("SELECT 1 FROM pg_database WHERE datname = 'shop'")),
    ),
}


@pytest.fixture(autouse=True)
def postgres_tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_restore of the tested major (the images put every tool on PATH)."""
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")


@pytest.fixture(params=sorted(ENGINES))
def engine(request: pytest.FixtureRequest) -> Engine:
    return ENGINES[request.param]


@pytest.fixture
def factory(
    engine: Engine,
    mariadb_factory: Callable[[], Any],
    postgresql_factory: Callable[..., Any],
) -> Callable[[], Any]:
    return mariadb_factory if engine.name == "mariadb" else postgresql_factory


@pytest.fixture
def source(engine: Engine, factory: Callable[[], Any]) -> Any:
    server = factory()
    if engine.name == "mariadb":
        maria.write_known_data(server)
        return server
    pg.write_known_data(server)
    # In a pod the app user owns what it created; that role does not exist in the new instance while it
    # loads (its users come once it is Ready): the load must not depend on the source's roles.
    server.query("CREATE ROLE source_app LOGIN")
    server.query("ALTER TABLE people OWNER TO source_app", dbname="crm")
    server.query("GRANT SELECT ON people TO source_app", dbname="crm")
    return server


Serve = Callable[[RestoreGate, Any], Awaitable[str]]


@pytest.fixture
async def serve(engine: Engine) -> AsyncIterator[Serve]:
    """Serve the real agent app for ``server`` with ``gate`` on loopback (the gate starts with the app)."""
    runners: list[web.AppRunner] = []

    async def start(gate: RestoreGate, server: Any) -> str:
        driver = make_driver(engine.name, server.engine_config())
        gate.writable = lambda: engine_not_writable(driver)  # as agent/main.py wires it
        runner = web.AppRunner(make_app(driver, secrets.token_urlsafe(16), restore_gate=gate))
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def readyz(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url + Paths.READYZ) as response:
        return response.status, await response.text()


async def until(gate: RestoreGate, *states: RestoreState) -> RestoreProgress:
    """Poll the gate until it reaches one of ``states`` (bounded; a hang fails, it is not timed)."""
    for _ in range(6000):
        if gate.progress.state in states:
            return gate.progress
        await asyncio.sleep(0.05)
    raise AssertionError(f"restore still {gate.progress}")


async def take_logical_backup(
    engine: Engine, source: Any, start_agent: StartAgent, target: BackupTarget, backup_id: str
) -> None:
    agent = await start_agent(engine.name, source.engine_config())
    req = BackupRequest(
        id=backup_id,
        method=BackupMethod.LOGICAL,
        target=target,
        created_at=CREATED_AT,
        databases=engine.databases,
    )
    reply = await backup(agent.url, agent.token, req)
    assert reply.phase is BackupPhase.COMPLETED, reply.error


def gate_for(engine: Engine, target: BackupTarget, backup_id: str, tmp_path: Path, new: Any) -> RestoreGate:
    """The gate agent/main.py builds for ``new`` (its probe is wired by ``serve``)."""
    volume, spool = tmp_path / "volume", tmp_path / "spool"
    volume.mkdir()
    spool.mkdir()
    request = RestoreRequest(
        backup_id=backup_id, source=target, engine=engine.name, major=engine.major, data_dir=str(volume)
    )
    return RestoreGate(request, new.engine_config(), lambda: "not served yet", spool, poll_seconds=0.1)


async def test_logical_backup_loads_into_a_fresh_server_and_readyz_follows(
    engine: Engine,
    source: Any,
    factory: Callable[[], Any],
    minio: MinioServer,
    start_agent: StartAgent,
    serve: Serve,
    tmp_path: Path,
) -> None:
    target = minio.target(prefix=f"gate-{engine.name}")
    await take_logical_backup(engine, source, start_agent, target, "lg1")
    new = factory()
    engine.fence(new, True)  # a read-only engine: the gate must wait, not load
    gate = gate_for(engine, target, "lg1", tmp_path, new)
    url = await serve(gate, new)
    for _ in range(600):
        if "read-only" in gate.progress.detail:
            break
        await asyncio.sleep(0.05)
    assert gate.progress.state is RestoreState.PENDING and "read-only" in gate.progress.detail
    status, text = await readyz(url)
    assert status == 503 and ErrorReply.model_validate_json(text).error == "restore_pending"
    assert not engine.has_data(new)

    engine.fence(new, False)
    progress = await until(gate, RestoreState.DONE, RestoreState.FAILED, RestoreState.REFUSED)
    assert progress.state is RestoreState.DONE, progress
    assert progress.method is BackupMethod.LOGICAL
    assert engine.rows(new) == engine.rows(source)
    assert (await readyz(url))[0] == 200
    assert sorted(p.name for p in (tmp_path / "volume").iterdir()) == [
        ".kubetrove-restore-lg1.loading",
        ".kubetrove-restored-lg1",
    ]


async def test_corrupt_logical_backup_is_refused_and_nothing_is_loaded(
    engine: Engine,
    source: Any,
    factory: Callable[[], Any],
    minio: MinioServer,
    start_agent: StartAgent,
    serve: Serve,
    tmp_path: Path,
) -> None:
    prefix = f"gate-corrupt-{engine.name}"
    target = minio.target(prefix=prefix)
    await take_logical_backup(engine, source, start_agent, target, "bad")
    corrupt_object(minio, f"{prefix}/bad/{engine.artifact}")
    new = factory()
    gate = gate_for(engine, target, "bad", tmp_path, new)
    url = await serve(gate, new)
    progress = await until(gate, RestoreState.DONE, RestoreState.FAILED, RestoreState.REFUSED)
    assert progress.state is RestoreState.REFUSED, progress
    assert "backup bad is corrupt" in progress.detail
    assert not engine.has_data(new)
    assert list((tmp_path / "volume").iterdir()) == []  # not even the loading marker
    status, text = await readyz(url)
    assert status == 503 and ErrorReply.model_validate_json(text).error == "restore_refused"
