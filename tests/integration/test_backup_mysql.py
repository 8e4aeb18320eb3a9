"""Backups of a real MySQL 9.7 through the real agent API to a real MinIO, restored into NEW 9.7 servers
and compared row by row: logical (mysqldump) loaded into a running server; physical (the clone plugin:
``CLONE LOCAL DATA DIRECTORY`` streamed out as a tar) placed in an empty data directory before mysqld
starts, then verified as the operator verifies a restore (``POST /v1/verify``: CHECK TABLE and the
manifest's row counts and checksums), and into the three members of a new lossless cluster that the loop
then runs (taken from a fenced server, as the operator backs up a replica). A corrupt object is refused.

Neither Percona XtraBackup nor MySQL Enterprise Backup can be installed here: the physical method is the
clone plugin. The agent runs MySQL 9.7's own mysqldump and mysql (``mysql_tools``: the host's
``mysqldump`` is MariaDB's).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any, cast

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.manifest import MANIFEST_NAME
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver, table_stats
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    BackupTarget,
    DirectoryTarget,
    RestoreRequest,
    Role,
    VerifyRequest,
)
from kubetrove.datastores.mysql import gtid
from kubetrove.reconcile.backup.verify_plan import compare
from tests.integration.cluster_engines import MySQLEngine
from tests.integration.cluster_harness import running
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import CREATED_AT, backup, corrupt_object, known_rows, listed_keys
from tests.integration.conftest_servers_mysql import MySQLFactory
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.mysql import MySQLServer, start_mysql_on

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
    server = mysql_factory("9.7", ("--plugin-load-add=mysql_clone.so",))  # as the rendered config loads it
    write_known_data(server)
    return server


def request(
    backup_id: str, target: BackupTarget, method: BackupMethod = BackupMethod.LOGICAL
) -> BackupRequest:
    return BackupRequest(id=backup_id, method=method, target=target, created_at=CREATED_AT)


def restore_request(
    backup_id: str, target: BackupTarget, major: str = MAJOR, data_dir: str | None = None
) -> RestoreRequest:
    return RestoreRequest(backup_id=backup_id, source=target, engine="mysql", major=major, data_dir=data_dir)


async def test_clone_backup_to_minio_is_placed_before_the_server_starts_and_verifies(
    source: MySQLServer, minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    # The emptyDir both containers mount (EngineContainer.clone_dir); under /tmp: the same path for the
    # chrooted server and for the agent on the host.
    clone_dir = tmp_path / "clone"
    clone_dir.mkdir()
    config = source.engine_config()
    agent_config = EngineConfig(**{**config.__dict__, "options": {"clone_dir": str(clone_dir)}})
    agent = await start_agent("mysql", agent_config)
    target = minio.target(prefix="mysql-clone")
    source.query("SET GLOBAL super_read_only = ON")  # backups are taken on a replica: fenced
    try:
        reply = await backup(agent.url, agent.token, request("cl", target, BackupMethod.PHYSICAL))
    finally:
        source.query("SET GLOBAL super_read_only = OFF")
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert reply.tool == "clone" and reply.size_bytes and reply.sha256
    assert reply.position == gtid_executed(source)  # read when asked for: no write ran meanwhile
    assert list(clone_dir.iterdir()) == []  # the copy is removed once streamed
    manifest = restore_mod.load_manifest(open_store(target), restore_request("cl", target))
    assert [a.name for a in manifest.artifacts] == ["backup.tar"] and manifest.major == MAJOR
    assert manifest.tables["shop.items"].rows == 500

    # The restore init container's part: verified, extracted, moved into the empty data directory...
    volume = tmp_path / "restored"
    restore_mod.restore(restore_request("cl", target, data_dir=str(volume / "data")))
    # ...then mysqld starts on it (the clone has the source's accounts, not its auto.cnf).
    new = start_mysql_on(volume, 77, source.password)
    try:
        assert dump_rows(new) == dump_rows(source)
        assert gtid_executed(new) == manifest.position == gtid_executed(source)
        assert new.query("SELECT @@server_uuid") != source.query("SELECT @@server_uuid")
        restored = await start_agent("mysql", new.engine_config())
        verify = await restored.client.verify(VerifyRequest(backup_id="cl", source=target))
        assert verify.check_tool == "CHECK TABLE" and verify.observed == verify.recorded
        assert all(c.ok for c in verify.checks) and verify.checks, verify.checks
        outcome = compare(verify)
        assert outcome.ok and outcome.tables == len(manifest.tables), outcome
    finally:
        new.stop()

    # Into a cluster (restoreFrom on a DatabaseCluster): every member restores the same backup before
    # its server first starts, from the product's rendered config; the loop makes one the primary and
    # the others replicate from it (lossless semi-sync): same history, each member its own server_uuid.
    def restore_member(data: Path) -> None:
        restore_mod.restore(restore_request("cl", target, data_dir=str(data)))

    engine = MySQLEngine(tmp_path / "cluster", restore=restore_member, admin_password=source.password)
    async with running(engine) as cluster:
        uuids = set()
        for pod in cluster.pods:
            member = cast(MySQLServer, cluster.servers[pod])
            assert dump_rows(member) == dump_rows(source), pod
            assert gtid.GtidSet.parse(gtid_executed(source)).is_subset(
                gtid.GtidSet.parse(gtid_executed(member))
            )
            uuids.add(member.query("SELECT @@server_uuid")[0][0])
            if pod != cluster.primary:
                status = await cluster.ops.status(pod)
                assert (status.role, status.source_host, status.replication_running) == (
                    Role.REPLICA,
                    cluster.primary,
                    True,
                )
        assert len(uuids) == 3


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
