"""Logical backups (mysqldump) of a real MySQL 9.7 through the real agent API to a real MinIO; restores
into NEW 9.7 servers, compared row by row; a corrupt object is refused; the restored tables pass CHECK TABLE.

The physical method (XtraBackup) is not tested: neither Percona XtraBackup nor MySQL Enterprise Backup can
be installed here. The agent runs MySQL 9.7's own mysqldump and mysql (``mysql_tools``: the host's
``mysqldump`` is MariaDB's).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.manifest import MANIFEST_NAME
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.registry import make_driver, table_stats
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    BackupTarget,
    DirectoryTarget,
    RestoreRequest,
)
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import CREATED_AT, backup, corrupt_object, known_rows, listed_keys
from tests.integration.conftest_servers_mysql import MySQLFactory
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.mysql import MySQLServer

MAJOR = "9.7"
SOURCE_DBS = ("shop", "crm")
pytestmark = pytest.mark.usefixtures("mysql_tools")


def write_known_data(server: MySQLServer, rows: int = 500) -> None:
    """Two databases, NULLs, unicode, binary and a view: every row predictable."""
    for db in SOURCE_DBS:
        server.query(f"CREATE DATABASE IF NOT EXISTS {db}")
    server.query(
        "CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(64) CHARACTER SET utf8mb4,"
        " price DECIMAL(10,2), note TEXT NULL, raw VARBINARY(16)) ENGINE=InnoDB"
    )
    server.query("CREATE TABLE crm.people (id BIGINT PRIMARY KEY AUTO_INCREMENT, email VARCHAR(80))")
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO shop.items VALUES (%s, %s, %s, %s, %s)", known_rows(rows))
            cur.executemany(
                "INSERT INTO crm.people (email) VALUES (%s)", [(f"p{i}@example.org",) for i in range(rows)]
            )
    finally:
        conn.close()
    server.query("CREATE VIEW shop.cheap AS SELECT id, name FROM shop.items WHERE price < 10")


def dump_rows(server: MySQLServer) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "shop.items": server.query("SELECT * FROM shop.items ORDER BY id"),
        "crm.people": server.query("SELECT * FROM crm.people ORDER BY id"),
        "shop.cheap": server.query("SELECT * FROM shop.cheap ORDER BY id"),
    }


def gtid_executed(server: MySQLServer) -> str:
    return re.sub(r"\s+", "", server.query("SELECT @@GLOBAL.gtid_executed")[0][0])


@pytest.fixture(scope="module")
def source(mysql_factory: MySQLFactory) -> MySQLServer:
    server = mysql_factory("9.7")
    write_known_data(server)
    return server


def request(backup_id: str, target: BackupTarget) -> BackupRequest:
    return BackupRequest(id=backup_id, method=BackupMethod.LOGICAL, target=target, created_at=CREATED_AT)


def restore_request(backup_id: str, target: BackupTarget, major: str = MAJOR) -> RestoreRequest:
    return RestoreRequest(backup_id=backup_id, source=target, engine="mysql", major=major)


async def test_mysqldump_to_minio_restores_into_a_new_server_with_its_gtids(
    source: MySQLServer, minio: MinioServer, mysql_factory: MySQLFactory, start_agent: StartAgent
) -> None:
    agent = await start_agent("mysql", source.engine_config())
    target = minio.target(prefix="mysql-logical")
    reply = await backup(agent.url, agent.token, request("rt", target))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert reply.tool == "mysqldump" and reply.size_bytes and reply.sha256
    # --set-gtid-purged=ON: the dump says which GTID set it is consistent with (--single-transaction).
    assert reply.position == gtid_executed(source)
    assert f"mysql-logical/rt/{MANIFEST_NAME}" in listed_keys(minio, "mysql-logical/rt/")
    manifest = restore_mod.load_manifest(open_store(target), restore_request("rt", target))
    assert manifest.major == MAJOR and manifest.tables["shop.items"].rows == 500

    new = mysql_factory("9.7")
    restore_mod.restore(restore_request("rt", target), new.engine_config())
    assert dump_rows(new) == dump_rows(source)
    assert table_stats("mysql", new.engine_config(), list(SOURCE_DBS)) == manifest.tables
    # The restored server carries the source's history as purged GTIDs: it can replicate from the
    # source (auto-positioning starts after them) and is not errant against it.
    assert gtid_executed(new) == gtid_executed(source)
    tool, checks = make_driver("mysql", new.engine_config()).check_tables(list(SOURCE_DBS))
    assert tool == "CHECK TABLE" and checks and all(c.ok for c in checks), checks


async def test_directory_target_and_corrupt_object_refused(
    source: MySQLServer,
    minio: MinioServer,
    mysql_factory: MySQLFactory,
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    agent = await start_agent("mysql", source.engine_config())
    directory = BackupTarget(directory=DirectoryTarget(path=str(tmp_path / "pvc")))
    reply = await backup(agent.url, agent.token, request("dir", directory))
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert sorted(p.name for p in (tmp_path / "pvc" / "dir").iterdir()) == ["backup.sql", MANIFEST_NAME]

    target = minio.target(prefix="mysql-corrupt")
    assert (await backup(agent.url, agent.token, request("bad", target))).phase is BackupPhase.COMPLETED
    corrupt_object(minio, "mysql-corrupt/bad/backup.sql")
    new = mysql_factory("9.7")
    before = new.query("SHOW DATABASES")
    with pytest.raises(restore_mod.RestoreRefused, match="corrupt"):
        restore_mod.restore(restore_request("bad", target), new.engine_config(), Path(tempfile.gettempdir()))
    assert new.query("SHOW DATABASES") == before and gtid_executed(new) == ""
    restore_mod.restore(restore_request("dir", directory), new.engine_config())
    assert dump_rows(new) == dump_rows(source)
