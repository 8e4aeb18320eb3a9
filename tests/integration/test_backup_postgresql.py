"""Backups of a real PostgreSQL 15 through the real agent API to a real MinIO; restores into NEW servers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.registry import table_stats
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, BackupTarget, RestoreRequest
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import (
    CREATED_AT,
    backup,
    corrupt_object,
    kill_tool_mid_backup,
    known_rows,
    listed_keys,
)
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.postgresql import BIN, PostgreSQLServer
from tests.integration.servers.restored import start_postgresql_on

DBS = ("shop", "crm")


def write_known_data(server: PostgreSQLServer, rows: int = 500) -> None:
    """Two databases with NULLs, unicode, bytea, a sequence and a view."""
    for db in DBS:
        server.query(f"CREATE DATABASE {db}")
    server.query(
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), note text, raw bytea)",
        dbname="shop",
    )
    with server.connect(dbname="shop") as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO items VALUES (%s, %s, %s, %s, %s)",
            known_rows(rows),
        )
    server.query("CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10", dbname="shop")
    server.query("CREATE TABLE people (id bigserial PRIMARY KEY, email text NOT NULL)", dbname="crm")
    server.query(
        "INSERT INTO people (email) SELECT 'p' || g || '@example.org' FROM generate_series(1, %s) g",
        (rows,),
        dbname="crm",
    )


def dump_rows(server: PostgreSQLServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row, ordered, plus the sequence position: compared exactly."""
    return {
        "items": server.query("SELECT * FROM items ORDER BY id", dbname="shop"),
        "cheap": server.query("SELECT * FROM cheap ORDER BY id", dbname="shop"),
        "people": server.query("SELECT * FROM people ORDER BY id", dbname="crm"),
        "seq": server.query("SELECT last_value FROM people_id_seq", dbname="crm"),
    }


@pytest.fixture(autouse=True)
def postgres_tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian puts only some PostgreSQL tools on PATH (pg_verifybackup is not); the images put them all."""
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")


@pytest.fixture(scope="module")
def source(postgresql_factory: Callable[..., PostgreSQLServer]) -> PostgreSQLServer:
    server = postgresql_factory()
    write_known_data(server)
    return server


def request(backup_id: str, method: BackupMethod, target: BackupTarget) -> BackupRequest:
    return BackupRequest(
        id=backup_id, method=method, target=target, created_at=CREATED_AT, databases=list(DBS)
    )


def restore_request(backup_id: str, target: BackupTarget, data_dir: Path | None = None) -> RestoreRequest:
    return RestoreRequest(
        backup_id=backup_id,
        source=target,
        engine="postgresql",
        major="15",
        data_dir=str(data_dir) if data_dir else None,
    )


def postgres_volume() -> Path:
    """A directory the postgres user owns (pytest's tmp dirs are root-only), like a pod's data volume."""
    base = Path(tempfile.mkdtemp(prefix="kt-pg-restore-"))
    shutil.chown(base, "postgres", "postgres")
    return base


@pytest.mark.parametrize("method", [BackupMethod.PHYSICAL, BackupMethod.LOGICAL])
async def test_backup_to_minio_and_restore_into_new_server(
    method: BackupMethod,
    source: PostgreSQLServer,
    minio: MinioServer,
    postgresql_factory: Callable[..., PostgreSQLServer],
    start_agent: StartAgent,
) -> None:
    agent = await start_agent("postgresql", source.engine_config())
    target = minio.target(prefix=f"pg-{method}")
    reply = await backup(agent.url, agent.token, request(f"rt-{method}", method, target))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert reply.position and "/" in reply.position  # an LSN
    expected = {
        f"pg-{method}/rt-{method}/{name}"
        for name in (["base.tar"] if method is BackupMethod.PHYSICAL else ["shop.pgdump", "crm.pgdump"])
    }
    assert set(listed_keys(minio, f"pg-{method}/")) == expected | {f"pg-{method}/rt-{method}/manifest.json"}

    if method is BackupMethod.PHYSICAL:
        base = postgres_volume()
        try:
            restore_mod.restore(restore_request(f"rt-{method}", target, base / "data"))
            new = start_postgresql_on(base, source.password)  # on failure it removes base itself
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
    else:
        new = postgresql_factory()
        restore_mod.restore(restore_request(f"rt-{method}", target), new.engine_config())
    try:
        assert dump_rows(new) == dump_rows(source)
        manifest = restore_mod.load_manifest(open_store(target), restore_request(f"rt-{method}", target))
        assert table_stats("postgresql", new.engine_config(), list(DBS)) == manifest.tables
        assert manifest.tables["shop.public.items"].rows == 500
    finally:
        if method is BackupMethod.PHYSICAL:
            new.stop()


async def test_corrupt_object_is_refused_and_target_untouched(
    source: PostgreSQLServer, minio: MinioServer, start_agent: StartAgent
) -> None:
    agent = await start_agent("postgresql", source.engine_config())
    target = minio.target(prefix="pg-corrupt")
    reply = await backup(agent.url, agent.token, request("bad", BackupMethod.PHYSICAL, target))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    corrupt_object(minio, "pg-corrupt/bad/base.tar", offset=5000)
    volume = postgres_volume()
    try:
        with pytest.raises(restore_mod.RestoreRefused, match=r"corrupt: artifact base\.tar has sha256"):
            restore_mod.restore(restore_request("bad", target, volume / "data"))
        assert list(volume.iterdir()) == []
    finally:
        shutil.rmtree(volume)


async def test_killed_tool_fails_and_leaves_nothing_complete(
    source: PostgreSQLServer, minio: MinioServer, start_agent: StartAgent
) -> None:
    agent = await start_agent("postgresql", source.engine_config())
    target = minio.target(prefix="pg-killed")
    await kill_tool_mid_backup(
        agent.url, agent.token, request("killed", BackupMethod.PHYSICAL, target), "pg_basebackup"
    )
    assert listed_keys(minio, "pg-killed/") == []
    with pytest.raises(restore_mod.RestoreRefused, match="missing or incomplete"):
        restore_mod.restore(restore_request("killed", target, Path("/nonexistent/never-touched")))
