"""Backups of a real Cassandra 5.0 node through the real agent API to a real MinIO; restores into a NEW node.

The source is the session node (conftest_servers_nosql.py). The restore runs the init container's code
(``restore.restore``) into the empty directory of a second node, which is then started on its own loopback
ports with a small heap, compared row by row, and stopped by PID.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tarfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.engines.cassandra.driver import CassandraDriver
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import methods_for
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, BackupTarget, RestoreRequest
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import CREATED_AT, backup, corrupt_object, known_rows, listed_keys
from tests.integration.servers import cassandra
from tests.integration.servers.minio import MinioServer

KEYSPACE = "kt_restore"
ROWS = 300
# Queries whose results must be identical on the source and the restored node (every column, ordered).
QUERIES = {
    "items": f"SELECT id, name, price, note, raw FROM {KEYSPACE}.items",
    "events": f"SELECT day, seq, tags, attrs FROM {KEYSPACE}.events",
    "by_note": f"SELECT id FROM {KEYSPACE}.items WHERE note = 'note 14'",  # through the secondary index
}


@pytest.fixture(autouse=True)
def nodetool_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent calls ``nodetool`` from PATH; the jars have no launcher script, so write one."""
    script = cassandra.nodetool_wrapper(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")


@pytest.fixture(scope="module")
def source(cassandra_server: cassandra.CassandraServer) -> cassandra.CassandraServer:
    """The session node with known data: partitions, clustering rows, collections, NULLs, blobs, an index."""
    with cassandra_server.session() as s:
        s.execute(
            f"CREATE KEYSPACE {KEYSPACE}"
            " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        s.execute(
            f"CREATE TABLE {KEYSPACE}.items"
            " (id int PRIMARY KEY, name text, price decimal, note text, raw blob)"
        )
        s.execute(f"CREATE INDEX items_note ON {KEYSPACE}.items (note)")
        s.execute(
            f"CREATE TABLE {KEYSPACE}.events (day text, seq int, tags set<text>, attrs map<text, int>,"
            " PRIMARY KEY (day, seq)) WITH CLUSTERING ORDER BY (seq DESC)"
        )
        insert = s.prepare(
            f"INSERT INTO {KEYSPACE}.items (id, name, price, note, raw) VALUES (?, ?, ?, ?, ?)"
        )
        for i, name, price, note, raw in known_rows(ROWS):
            s.execute(insert, (i, name, Decimal(str(price)), note, raw))
        event = s.prepare(f"INSERT INTO {KEYSPACE}.events (day, seq, tags, attrs) VALUES (?, ?, ?, ?)")
        for i in range(ROWS):
            s.execute(event, (f"2026-11-{i % 5 + 1:02d}", i, {f"t{i % 3}", "all"}, {"n": i}))
        s.execute(f"DELETE FROM {KEYSPACE}.items WHERE id = 1")  # a tombstone must stay a deletion
    return cassandra_server


def rows(server: cassandra.CassandraServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every query's rows as sorted tuples (partition order depends on tokens, not on the data)."""
    with server.session() as s:
        return {name: sorted(tuple(r) for r in s.execute(cql)) for name, cql in QUERIES.items()}


def config(server: cassandra.CassandraServer) -> EngineConfig:
    """What the agent sidecar gets: ``--data-dir`` is the volume (the node's data dirs are below it)."""
    return EngineConfig(
        port=server.port,
        user=server.user,
        password=server.password,
        options={"data_dir": str(server.workdir), **server.agent_options()},
    )


def restore_request(backup_id: str, target: BackupTarget, volume: Path) -> RestoreRequest:
    return RestoreRequest(
        backup_id=backup_id,
        source=target,
        engine="cassandra",
        major=methods_for("cassandra").major(cassandra.VERSION),
        data_dir=str(volume),
    )


async def backed_up(
    source: cassandra.CassandraServer, minio: MinioServer, start_agent: StartAgent, backup_id: str
) -> BackupTarget:
    """Take backup ``backup_id`` through a real agent's API into MinIO prefix ``cass-<id>``; its target."""
    agent = await start_agent("cassandra", config(source))
    target = minio.target(prefix=f"cass-{backup_id}")
    request = BackupRequest(id=backup_id, method=BackupMethod.PHYSICAL, target=target, created_at=CREATED_AT)
    reply = await backup(agent.url, agent.token, request)
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    return target


def snapshot_left(source: cassandra.CassandraServer, tag: str, limit: float = 120) -> list[Path]:
    """The snapshot dirs of ``tag`` still there once clearsnapshot had time (it runs after Completed)."""
    deadline = time.monotonic() + limit
    while (left := list((source.workdir / "data").glob(f"*/*/snapshots/{tag}"))) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    return left


def snapshot_keyspaces(minio: MinioServer, key: str) -> set[str]:
    """The keyspaces that have snapshot files in the stored tar."""
    body = minio.client().get_object(Bucket=minio.bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        parts = [Path(m.name).parts for m in tar.getmembers() if "/snapshots/" in m.name]
    return {p[p.index("snapshots") - 2] for p in parts}  # <keyspace>/<table>/snapshots/<tag>/


def restore_and_compare(source: cassandra.CassandraServer, target: BackupTarget, volume: Path) -> None:
    """Restore "rt" into ``volume`` as the init container does, start a new node on it, compare exactly."""
    restore_mod.restore(restore_request("rt", target, volume))
    data = volume / "data"
    assert not (data / "system").exists()  # node-local state: the new node makes its own
    assert list(data.glob("*/*/snapshots")) == []
    assert list(data.glob(f"{KEYSPACE}/items-*/*-Data.db"))  # SSTables sit in the table directory
    assert list(data.glob(f"{KEYSPACE}/items-*/.items_note/*-Data.db"))  # and the index's in its subdir

    new = cassandra.start(volume, heap="512m")
    print(f"\nrestored cassandra node up in {new.startup_seconds:.1f} s", file=sys.stderr)
    try:
        restored = rows(new)
        assert restored == rows(source)
        assert len(restored["items"]) == ROWS - 1
        assert restored["by_note"] == [(14,)]
        with new.session() as s, source.session() as t:
            ours = s.execute("SELECT host_id FROM system.local").one()[0]
            theirs = t.execute("SELECT host_id FROM system.local").one()[0]
        assert ours != theirs  # a new member, not an impersonation of the source
        # The verification's consistency check: nodetool verify --force reads every SSTable back.
        driver = CassandraDriver(config(new))
        try:
            tool, checks = driver.check_tables([KEYSPACE])
        finally:
            driver.close()
        assert tool == "nodetool verify"
        assert sorted((c.table, c.ok) for c in checks) == [
            (f"{KEYSPACE}.events", True),
            (f"{KEYSPACE}.items", True),
        ]
    finally:
        new.stop()


@pytest.fixture
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory standing for the new node's data volume."""
    return tmp_path_factory.mktemp("cassandra-restored")


def entries(path: Path) -> list[Path]:
    return list(path.iterdir())


async def test_backup_to_minio_and_restore_into_new_node(
    source: cassandra.CassandraServer, minio: MinioServer, start_agent: StartAgent, volume: Path
) -> None:
    target = await backed_up(source, minio, start_agent, "rt")
    assert listed_keys(minio, "cass-rt/") == ["cass-rt/rt/manifest.json", "cass-rt/rt/sstables.tar"]
    assert await asyncio.to_thread(snapshot_left, source, "rt") == []  # clearsnapshot ran
    # `nodetool snapshot` with no keyspace argument took every keyspace, system_schema included.
    keyspaces = snapshot_keyspaces(minio, "cass-rt/rt/sstables.tar")
    assert {"system_schema", "system", "system_auth", KEYSPACE} <= keyspaces
    await asyncio.to_thread(restore_and_compare, source, target, volume)


async def test_corrupt_object_is_refused_and_target_untouched(
    source: cassandra.CassandraServer, minio: MinioServer, start_agent: StartAgent, volume: Path
) -> None:
    target = await backed_up(source, minio, start_agent, "bad")
    corrupt_object(minio, "cass-bad/bad/sstables.tar", offset=5000)
    with pytest.raises(restore_mod.RestoreRefused, match=r"corrupt: artifact sstables\.tar has sha256"):
        restore_mod.restore(restore_request("bad", target, volume))
    assert entries(volume) == []
