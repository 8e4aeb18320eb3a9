"""The agent's restore gate: a real directory store, a real (tiny) load tool, the real aiohttp app.

The "engine" is a file the load tool appends its stdin to, so what was loaded, and how often, is exact.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from kubetrove.agent.app import make_app
from kubetrove.agent.backup import restore
from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.backup.manifest import Manifest
from kubetrove.agent.backup.restore_gate import INTERRUPTED, RestoreGate, engine_not_writable, loading_marker
from kubetrove.agent.client import AgentClient
from kubetrove.agent.engines.base import EngineUnavailable
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import EngineMethods, LogicalRestore
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupTarget,
    DirectoryTarget,
    ErrorReply,
    Paths,
    RestoreProgress,
    RestoreRequest,
    RestoreState,
)
from tests.unit.agent.conftest import AUTH, TOKEN
from tests.unit.agent.fake_driver import FakeDriver

DUMP = b"CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1),(2);\n"
# Appends stdin to argv[1]; with argv[2], first waits until that file exists; exits argv[3].
LOAD = (
    "import os, sys, time\n"
    "hold = sys.argv[2]\n"
    "while hold and not os.path.exists(hold): time.sleep(0.01)\n"
    "open(sys.argv[1], 'ab').write(sys.stdin.buffer.read())\n"
    "sys.exit(int(sys.argv[3]))\n"
)


class LoadingEngine(EngineMethods):
    """Its logical restore appends the spooled dump to ``db`` (optionally held until ``hold`` exists)."""

    engine = "mariadb"
    methods = frozenset({BackupMethod.LOGICAL})

    def __init__(self, db: Path, hold: Path | None = None, code: int = 0) -> None:
        self.db, self.hold, self.code = db, hold, code

    def logical_restore(
        self, config: EngineConfig, work: Path, spooled: Path, database: str | None
    ) -> LogicalRestore:
        argv = (sys.executable, "-c", LOAD, str(self.db), str(self.hold or ""), str(self.code))
        return LogicalRestore(argv, stdin=spooled)


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(DirectoryTarget(path=str(tmp_path / "store")))


def put_backup(
    store: DirectoryStore, method: BackupMethod = BackupMethod.LOGICAL, data: bytes = DUMP
) -> None:
    writer = store.writer("b1", "backup.sql")
    writer.write(data)
    artifact = writer.complete()
    store.put_manifest(
        Manifest(
            id="b1",
            engine="mariadb",
            engine_version="10.11.16-MariaDB",
            major="10.11",
            method=method,
            tool="mariadb-dump",
            artifacts=[artifact],
            created_at="2026-01-01T00:00:00Z",
        )
    )


def corrupt(root: Path) -> None:
    (path,) = root.rglob("backup.sql")
    data = bytearray(path.read_bytes())
    data[3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    (tmp_path / "volume").mkdir()
    return tmp_path / "volume"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "engine.db"


def make_gate(tmp_path: Path, volume: Path, writable: Callable[[], str | None] = lambda: None) -> RestoreGate:
    request = RestoreRequest(
        backup_id="b1",
        source=BackupTarget(directory=DirectoryTarget(path=str(tmp_path / "store"))),
        engine="mariadb",
        major="10.11",
        data_dir=str(volume),
    )
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return RestoreGate(request, EngineConfig(), writable, spool, poll_seconds=0.01, max_backoff_seconds=0.05)


def loaded(db: Path) -> bytes | None:
    """What the load tool has written into the "engine" (None: never ran)."""
    return db.read_bytes() if db.exists() else None


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


async def until(gate: RestoreGate, *states: RestoreState) -> RestoreProgress:
    """Poll until the gate is in one of ``states`` (bounded by the test's own timeout, not asserted)."""
    for _ in range(3000):
        if gate.progress.state in states:
            return gate.progress
        await asyncio.sleep(0.01)
    raise AssertionError(f"gate still {gate.progress} after polling")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, db: Path) -> LoadingEngine:
    loading = LoadingEngine(db)
    monkeypatch.setattr(restore, "methods_for", lambda name: loading)
    return loading


Client = TestClient[Request, Application]
Serve = Callable[[RestoreGate], Awaitable[Client]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start the real agent app (in-memory driver) with ``gate``; every server is closed after the test."""
    clients: list[Client] = []

    async def start(gate: RestoreGate) -> Client:
        client: Client = TestClient(TestServer(make_app(FakeDriver(), TOKEN, restore_gate=gate)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def readyz(client: Client) -> tuple[int, str]:
    response = await client.get(Paths.READYZ)
    return response.status, await response.text()


async def test_logical_load_gates_readiness_until_done(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine, serve: Serve
) -> None:
    put_backup(store)
    engine.hold = tmp_path / "release"
    writable: list[str | None] = ["connection refused"]
    gate = make_gate(tmp_path, volume, lambda: writable[0])
    client = await serve(gate)  # the app starts the gate in the background
    # Waiting for the engine: pending, unready, nothing loaded, no marker.
    progress = await until(gate, RestoreState.PENDING)
    assert "starting" in progress.detail or "waiting for the engine" in progress.detail
    status, text = await readyz(client)
    assert status == 503 and ErrorReply.model_validate_json(text).error == "restore_pending"
    assert loaded(db) is None and loading_marker(gate.request) is not None and entries(volume) == []

    writable[0] = None
    await until(gate, RestoreState.RESTORING)
    status, text = await readyz(client)
    assert status == 503 and ErrorReply.model_validate_json(text).error == "restore_restoring"
    reply = await client.get(Paths.RESTORE, headers=AUTH)
    assert RestoreProgress.model_validate_json(await reply.text()).state is RestoreState.RESTORING

    engine.hold.touch()
    progress = await until(gate, RestoreState.DONE)
    assert progress.method is BackupMethod.LOGICAL and "loaded backup b1" in progress.detail
    assert loaded(db) == DUMP  # loaded exactly once
    assert entries(volume) == [".kubetrove-restore-b1.loading", ".kubetrove-restored-b1"]
    assert (await readyz(client))[0] == 200
    assert entries(tmp_path / "spool") == []  # the spooled dump is removed


async def test_restored_marker_means_done_without_touching_anything(
    tmp_path: Path, volume: Path, db: Path, engine: LoadingEngine
) -> None:
    # The backup may be long gone: a recreated pod must not need it.
    gate = make_gate(tmp_path, volume, lambda: "never asked")
    (volume / ".kubetrove-restored-b1").touch()
    (volume / ".kubetrove-restore-b1.loading").touch()
    await gate.run()
    assert gate.progress.state is RestoreState.DONE and gate.ready
    assert loaded(db) is None


async def test_loading_without_restored_is_failed_and_never_retried(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine
) -> None:
    put_backup(store)
    gate = make_gate(tmp_path, volume)
    (volume / ".kubetrove-restore-b1.loading").touch()
    await gate.run()
    assert gate.progress.state is RestoreState.FAILED and gate.progress.detail == INTERRUPTED
    assert loaded(db) is None and not gate.ready


async def test_corrupt_artifact_is_refused_and_nothing_is_loaded(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine, serve: Serve
) -> None:
    put_backup(store)
    corrupt(tmp_path / "store")
    gate = make_gate(tmp_path, volume)
    client = await serve(gate)
    progress = await until(gate, RestoreState.REFUSED, RestoreState.FAILED, RestoreState.DONE)
    assert progress.state is RestoreState.REFUSED and "backup b1 is corrupt" in progress.detail
    assert loaded(db) is None and entries(volume) == []  # no loading marker: nothing touched
    status, text = await readyz(client)
    assert status == 503 and ErrorReply.model_validate_json(text).error == "restore_refused"
    assert "corrupt" not in text  # the cause is behind the token (GET /v1/restore), not on /readyz


async def test_a_failed_load_is_final(
    tmp_path: Path, volume: Path, store: DirectoryStore, engine: LoadingEngine
) -> None:
    put_backup(store)
    engine.code = 1
    gate = make_gate(tmp_path, volume)
    await gate.run()
    assert gate.progress.state is RestoreState.FAILED
    assert "exited with 1" in gate.progress.detail and "partial restore" in gate.progress.detail
    assert entries(volume) == [".kubetrove-restore-b1.loading"]


async def test_missing_backup_is_refused(
    tmp_path: Path, volume: Path, db: Path, engine: LoadingEngine
) -> None:
    gate = make_gate(tmp_path, volume)
    await gate.run()
    assert gate.progress.state is RestoreState.REFUSED
    assert "missing or incomplete: no manifest" in gate.progress.detail and loaded(db) is None


async def test_physical_is_done_by_the_init_container(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine
) -> None:
    put_backup(store, BackupMethod.PHYSICAL)
    gate = make_gate(tmp_path, volume, lambda: "the engine is never asked for a physical restore")
    await gate.run()
    assert gate.progress.state is RestoreState.DONE and gate.progress.method is BackupMethod.PHYSICAL
    assert loaded(db) is None


async def test_an_error_before_loading_is_retried(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine
) -> None:
    put_backup(store)
    gate = make_gate(tmp_path, volume)
    gate.spool = tmp_path / "no-such-spool"  # mkdtemp fails: nothing loaded, so it is retried
    task = asyncio.create_task(gate.run())
    progress = await until(gate, RestoreState.PENDING, RestoreState.FAILED)
    for _ in range(3000):
        if "retrying" in gate.progress.detail:
            break
        await asyncio.sleep(0.01)
    assert "nothing loaded yet, retrying" in gate.progress.detail, progress
    gate.spool.mkdir()
    await asyncio.wait_for(task, 30)
    assert gate.progress.state is RestoreState.DONE and loaded(db) == DUMP


def test_engine_not_writable_probe() -> None:
    driver = FakeDriver()
    assert engine_not_writable(driver) is None
    driver.read_only = True
    assert engine_not_writable(driver) == "it is read-only"
    driver.fail = EngineUnavailable("connection refused")
    assert engine_not_writable(driver) == "connection refused"


async def test_restore_route_is_404_without_a_request(http: Client) -> None:
    response = await http.get(Paths.RESTORE, headers=AUTH)
    assert response.status == 404
    assert (await http.get(Paths.READYZ)).status == 200


async def test_the_operator_client_reads_the_progress(
    tmp_path: Path, volume: Path, store: DirectoryStore, engine: LoadingEngine, serve: Serve
) -> None:
    put_backup(store)
    corrupt(tmp_path / "store")
    gate = make_gate(tmp_path, volume)
    http = await serve(gate)
    await until(gate, RestoreState.REFUSED)
    async with AgentClient(str(http.make_url("")), TOKEN) as agent:
        progress = await agent.restore_progress()
    assert progress == gate.progress and progress.state is RestoreState.REFUSED


def forge_manifest(store_root: Path, backup_id: str, **changes: object) -> None:
    """Rewrite backup ``backup_id``'s manifest JSON as whoever holds the bucket's keys could."""
    path = store_root / backup_id / "manifest.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if key == "name":
            data["artifacts"][0]["name"] = value
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("victim_name", ["absolute", "parent"])
async def test_a_forged_artifact_name_is_refused_before_any_file_is_opened(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine, victim_name: str
) -> None:
    """The review's attack: an absolute name made a logical restore open (and truncate) a file outside
    its spool before any digest was checked; ``../`` read outside the backup's directory."""
    put_backup(store)
    victim = tmp_path / "victim.conf"
    victim.write_bytes(b"precious")
    name = str(victim) if victim_name == "absolute" else "../b1/backup.sql"
    forge_manifest(tmp_path / "store", "b1", name=name)
    gate = make_gate(tmp_path, volume)
    await gate.run()
    assert gate.progress.state is RestoreState.REFUSED
    assert "invalid manifest" in gate.progress.detail and "artifacts.0.name" in gate.progress.detail
    assert name not in gate.progress.detail  # the forged value stays out of status and logs
    assert victim.read_bytes() == b"precious" and loaded(db) is None and entries(volume) == []
    assert entries(tmp_path / "spool") == []


async def test_another_backups_manifest_is_refused(
    tmp_path: Path, volume: Path, db: Path, store: DirectoryStore, engine: LoadingEngine
) -> None:
    """A manifest (with its artifacts) copied from backup b0 into b1's place is not b1."""
    put_backup(store)
    forge_manifest(tmp_path / "store", "b1", id="b0")
    gate = make_gate(tmp_path, volume)
    await gate.run()
    assert gate.progress.state is RestoreState.REFUSED
    assert "is of backup b0, not b1 (copied or forged)" in gate.progress.detail
    assert loaded(db) is None and entries(volume) == []
