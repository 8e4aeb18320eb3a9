"""Backups of a real MariaDB 10.11 through the real agent API to a real MinIO; restores into NEW servers.

Every restore is compared row by row with the source; a corrupt object and a killed tool are refused /
reported Failed with nothing listed as complete.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.manifest import MANIFEST_NAME
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.registry import table_stats
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    BackupTarget,
    DirectoryTarget,
    Paths,
    RestoreRequest,
)
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import (
    CREATED_AT,
    backup,
    corrupt_object,
    kill_tool_mid_backup,
    known_rows,
    listed_keys,
    post_backup,
    wait_backup,
)
from tests.integration.servers.mariadb import MariaDBServer
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.restored import start_mariadb_on

MAJOR = "10.11"
SOURCE_DBS = ("shop", "crm")


def write_known_data(server: MariaDBServer, rows: int = 500) -> None:
    """Two databases, NULLs, unicode, binary, a view and a trigger-free table: every row predictable."""
    for db in SOURCE_DBS:
        server.query(f"CREATE DATABASE IF NOT EXISTS {db}")
    server.query(
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64) CHARACTER SET utf8mb4,"
        " price DECIMAL(10,2),"
        " note TEXT NULL, raw VARBINARY(16)) ENGINE=InnoDB"
    )
    server.query(
        "CREATE TABLE crm.people (id BIGINT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(80)) ENGINE=InnoDB"
    )
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO shop.items VALUES (%s, %s, %s, %s, %s)",
                known_rows(rows),
            )
            cur.executemany(
                "INSERT INTO crm.people (email) VALUES (%s)", [(f"p{i}@example.org",) for i in range(rows)]
            )
    finally:
        conn.close()
    server.query("CREATE VIEW shop.cheap AS SELECT id, name FROM shop.items WHERE price < 10")


def dump_rows(server: MariaDBServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the source databases, ordered: compared exactly."""
    return {
        "shop.items": server.query("SELECT * FROM shop.items ORDER BY id"),
        "crm.people": server.query("SELECT * FROM crm.people ORDER BY id"),
        "shop.cheap": server.query("SELECT * FROM shop.cheap ORDER BY id"),
    }


@pytest.fixture(scope="module")
def source(mariadb_factory: Callable[[], MariaDBServer]) -> MariaDBServer:
    server = mariadb_factory()
    write_known_data(server)
    return server


def request(backup_id: str, method: BackupMethod, target: BackupTarget) -> BackupRequest:
    return BackupRequest(id=backup_id, method=method, target=target, created_at=CREATED_AT)


def restore_request(
    backup_id: str, target: BackupTarget, data_dir: Path | None = None, major: str = MAJOR
) -> RestoreRequest:
    return RestoreRequest(
        backup_id=backup_id,
        source=target,
        engine="mariadb",
        major=major,
        data_dir=str(data_dir) if data_dir else None,
    )


@pytest.mark.parametrize("method", [BackupMethod.PHYSICAL, BackupMethod.LOGICAL])
async def test_backup_to_minio_and_restore_into_new_server(
    method: BackupMethod,
    source: MariaDBServer,
    minio: MinioServer,
    mariadb_factory: Callable[[], MariaDBServer],
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    target = minio.target(prefix=f"mariadb-{method}")
    reply = await backup(agent.url, agent.token, request(f"rt-{method}", method, target))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    gtid = source.query("SELECT @@gtid_current_pos")[0][0]
    assert reply.position == gtid  # the tool's own report of where the copy is consistent
    assert reply.size_bytes and reply.sha256 and reply.tool in ("mariadb-backup", "mariadb-dump")
    prefix = f"mariadb-{method}/rt-{method}/"
    assert f"{prefix}{MANIFEST_NAME}" in listed_keys(minio, prefix)

    manifest = restore_mod.load_manifest(open_store(target), restore_request(f"rt-{method}", target))
    assert manifest.major == MAJOR and manifest.created_at == CREATED_AT
    assert manifest.tables["shop.items"].rows == 500

    if method is BackupMethod.PHYSICAL:
        base = tmp_path / "new"
        restore_mod.restore(restore_request(f"rt-{method}", target, base / "data"))
        new = start_mariadb_on(base, source.password)
    else:
        new = mariadb_factory()
        restore_mod.restore(restore_request(f"rt-{method}", target), new.engine_config())
    try:
        assert dump_rows(new) == dump_rows(source)
        # What a verification restore compares: the stats recorded at backup time.
        assert table_stats("mariadb", new.engine_config(), list(SOURCE_DBS)) == manifest.tables
    finally:
        if method is BackupMethod.PHYSICAL:
            new.stop()


async def test_directory_target(
    source: MariaDBServer,
    start_agent: StartAgent,
    tmp_path: Path,
    mariadb_factory: Callable[[], MariaDBServer],
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    target = BackupTarget(directory=DirectoryTarget(path=str(tmp_path / "pvc")))
    reply = await backup(agent.url, agent.token, request("dir-logical", BackupMethod.LOGICAL, target))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert sorted(p.name for p in (tmp_path / "pvc" / "dir-logical").iterdir()) == [
        "backup.sql",
        MANIFEST_NAME,
    ]
    new = mariadb_factory()
    restore_mod.restore(restore_request("dir-logical", target), new.engine_config())
    assert dump_rows(new) == dump_rows(source)


async def test_repeated_post_is_idempotent(
    source: MariaDBServer, minio: MinioServer, start_agent: StartAgent
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    req = request("idem", BackupMethod.LOGICAL, minio.target(prefix="mariadb-idem"))
    first, _ = await post_backup(agent.url, agent.token, req)
    second, _ = await post_backup(agent.url, agent.token, req)
    assert (first, second) == (202, 200)
    assert (await wait_backup(agent.url, agent.token, "idem")).phase is BackupPhase.COMPLETED
    # A new agent (an agent restart) finds the completed backup in storage instead of taking it again.
    other = await start_agent("mariadb", source.engine_config())
    status, reply = await post_backup(other.url, other.token, req)
    assert status == 200 and reply.phase is BackupPhase.COMPLETED


@pytest.mark.parametrize("method", [BackupMethod.PHYSICAL, BackupMethod.LOGICAL])
async def test_corrupt_object_is_refused_and_target_untouched(
    method: BackupMethod,
    source: MariaDBServer,
    minio: MinioServer,
    mariadb_factory: Callable[[], MariaDBServer],
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    target = minio.target(prefix=f"mariadb-corrupt-{method}")
    reply = await backup(agent.url, agent.token, request("bad", method, target))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    artifact = "backup.xbstream" if method is BackupMethod.PHYSICAL else "backup.sql"
    corrupt_object(minio, f"mariadb-corrupt-{method}/bad/{artifact}")

    if method is BackupMethod.PHYSICAL:
        volume = tmp_path / "volume"
        volume.mkdir()
        with pytest.raises(
            restore_mod.RestoreRefused, match=r"corrupt: artifact backup\.xbstream has sha256"
        ):
            restore_mod.restore(restore_request("bad", target, volume / "data"))
        assert list(volume.iterdir()) == []  # no data dir, no staging leftovers
    else:
        new = mariadb_factory()
        before = new.query("SHOW DATABASES")
        with pytest.raises(restore_mod.RestoreRefused, match="corrupt"):
            restore_mod.restore(
                restore_request("bad", target), new.engine_config(), Path(tempfile.gettempdir())
            )
        assert new.query("SHOW DATABASES") == before


async def test_wrong_major_engine_or_missing_backup_refused(
    source: MariaDBServer, minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    target = minio.target(prefix="mariadb-refuse")
    assert (
        await backup(agent.url, agent.token, request("ok", BackupMethod.LOGICAL, target))
    ).phase is BackupPhase.COMPLETED
    with pytest.raises(restore_mod.RestoreRefused, match=r"of mariadb 10\.11 .* the new instance runs 11\.4"):
        restore_mod.restore(restore_request("ok", target, tmp_path / "d", major="11.4"))
    wrong = restore_request("ok", target, tmp_path / "d").model_copy(update={"engine": "mysql"})
    with pytest.raises(restore_mod.RestoreRefused, match="of engine mariadb, not mysql"):
        restore_mod.restore(wrong)
    with pytest.raises(restore_mod.RestoreRefused, match="missing or incomplete: no manifest"):
        restore_mod.restore(restore_request("never-taken", target, tmp_path / "d"))
    assert not (tmp_path / "d").exists()


async def test_killed_tool_fails_and_leaves_nothing_complete(
    source: MariaDBServer, minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    target = minio.target(prefix="mariadb-killed")
    await kill_tool_mid_backup(
        agent.url, agent.token, request("killed", BackupMethod.PHYSICAL, target), "mariadb-backup"
    )
    assert listed_keys(minio, "mariadb-killed/") == []
    uploads = minio.client().list_multipart_uploads(
        Bucket=minio.bucket, Prefix="mariadb-killed/killed/backup.xbstream"
    )
    assert uploads.get("Uploads", []) == []  # aborted, not merely hidden
    with pytest.raises(restore_mod.RestoreRefused, match="missing or incomplete"):
        restore_mod.restore(restore_request("killed", target, tmp_path / "d"))


async def test_unreachable_bucket_is_a_clear_502(
    source: MariaDBServer, minio: MinioServer, start_agent: StartAgent
) -> None:
    agent = await start_agent("mariadb", source.engine_config())
    target = minio.target("x")
    assert target.s3 is not None
    missing = BackupTarget(s3=target.s3.model_copy(update={"bucket": "no-such-bucket"}))
    headers = {"Authorization": f"Bearer {agent.token}", "Content-Type": "application/json"}
    body = request("nobucket", BackupMethod.LOGICAL, missing).model_dump_json()
    async with (
        aiohttp.ClientSession() as session,
        session.post(agent.url + Paths.BACKUPS, data=body, headers=headers) as r,
    ):
        reply = await r.json()
    assert r.status == 502 and reply["error"] == "storage_error" and "NoSuchBucket" in reply["detail"]
