"""A real three-node ring backed up node by node through the agents, restored into a NEW ring of three.

Each node's agent snapshots its node (``nodetool snapshot`` + tar, to MinIO) and records in the manifest
who the node was (host id, address, tokens) and the ring-wide row count of every table (consistency ALL).
The restore runs the init container's code (``restore.restore``) into each new node's empty directory, then
the new ring forms on 127.0.0.5-7 with each node given the tokens of the node whose snapshot it holds
(``initial_token``, ``auto_bootstrap: false``): it owns the same ranges, so every replica's data is where
the ring looks for it. Verification: every table's count at ALL equals the count recorded at backup time.
Documented procedure: https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/backups.html
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.manifest import Manifest
from kubetrove.agent.engines.registry import methods_for
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupReply, BackupRequest, RestoreRequest
from tests.integration.conftest_backup import CREATED_AT, backup
from tests.integration.ring_harness import RingRig
from tests.integration.servers import cassandra, cassandra_ring
from tests.integration.servers.minio import MinioServer

# RF 3 (every node holds every row) and RF 2 (each node a different two thirds): the second only comes
# back whole if each snapshot lands on a node owning the ranges it was taken for.
KEYSPACES = {"ring_bk3": (3, 300), "ring_bk2": (2, 400)}


def count(session: object, table: str) -> int:
    read = SimpleStatement(f"SELECT count(*) FROM {table}", consistency_level=ConsistencyLevel.ALL)
    return int(session.execute(read, timeout=120).one()[0])  # type: ignore[attr-defined]


async def backed_up(rig: RingRig, minio: MinioServer) -> list[BackupReply]:
    """Data in both keyspaces, then one backup per node ("ringbk-<i>"), all under one MinIO prefix."""
    for keyspace, (factor, rows) in KEYSPACES.items():
        await rig.agents[rig.pod(0)].ensure_database(keyspace, factor)
        with rig.ring.session() as s:
            s.execute(f"CREATE TABLE IF NOT EXISTS {keyspace}.t (id int PRIMARY KEY, v text)", timeout=60)
            insert = s.prepare(f"INSERT INTO {keyspace}.t (id, v) VALUES (?, ?)")
            insert.consistency_level = ConsistencyLevel.ALL
            for i in range(rows):
                s.execute(insert, (i, f"row {i}"))
    target = minio.target(prefix="cass-ring")
    replies = []
    for i, pod in enumerate(rig.pods):
        request = BackupRequest(
            id=f"ringbk-{i}", method=BackupMethod.PHYSICAL, target=target, created_at=CREATED_AT
        )
        reply = await backup(rig.urls[pod], rig.token, request)
        assert reply.phase is BackupPhase.COMPLETED, reply.error
        replies.append(reply)
    return replies


def manifest(minio: MinioServer, backup_id: str) -> Manifest:
    body = minio.client().get_object(Bucket=minio.bucket, Key=f"cass-ring/{backup_id}/manifest.json")["Body"]
    return Manifest.model_validate_json(body.read())


def restore_ring(minio: MinioServer, manifests: list[Manifest], workdir: Path) -> cassandra_ring.Ring:
    """Each backup into a new node's empty directory, then the ring formed with the source's tokens."""
    new = cassandra_ring.plan(workdir, first_address=5, size=len(manifests))
    extra = []
    for node, m in zip(new.nodes, manifests, strict=True):
        request = RestoreRequest(
            backup_id=m.id,
            source=minio.target(prefix="cass-ring"),
            engine="cassandra",
            major=methods_for("cassandra").major(cassandra.VERSION),
            data_dir=str(node.workdir),
        )
        restore_mod.restore(request)
        assert m.ring_node is not None
        # The ranges of the source node, and no streaming: the data is already on disk.
        extra.append(f"initial_token: {','.join(m.ring_node.tokens)}\nauto_bootstrap: false\n")
    return cassandra_ring.form(new, extra)


async def test_a_ring_backup_restores_into_a_new_ring_with_every_row(
    rig: RingRig, minio: MinioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        await backup_and_restore(rig, minio, tmp_path_factory.mktemp("ring-restored"))
    finally:
        with rig.ring.session() as s:
            for keyspace in KEYSPACES:
                s.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)


async def backup_and_restore(rig: RingRig, minio: MinioServer, workdir: Path) -> None:
    replies = await backed_up(rig, minio)
    truth = rig.ring.status()
    manifests = [manifest(minio, r.id) for r in replies]
    for i, (reply, m) in enumerate(zip(replies, manifests, strict=True)):
        source = truth[rig.ring.nodes[i].address]
        # Who each node was: its host id, address and its 16 tokens, in the reply and in the manifest.
        assert reply.ring_node == m.ring_node and m.ring_node is not None
        assert (m.ring_node.host_id, m.ring_node.address) == (source.host_id, source.address)
        assert len(m.ring_node.tokens) == 16
        # Ring-wide counts, whichever node was asked.
        assert {t: s.rows for t, s in m.tables.items()} == {
            f"{ks}.t": rows for ks, (_, rows) in KEYSPACES.items()
        }
    all_tokens = [t for m in manifests for t in m.ring_node.tokens]  # type: ignore[union-attr]
    assert len(set(all_tokens)) == 48

    new = await asyncio.to_thread(restore_ring, minio, manifests, workdir)
    print(f"\nrestored ring of 3 up in {new.startup_seconds:.0f} s", file=sys.stderr)
    try:
        states = new.status()
        assert {s.state for s in states.values()} == {"UN"}
        for node, m in zip(new.nodes, manifests, strict=True):
            with node.server.session() as s:  # the superuser's role came back with system_auth
                local = s.execute("SELECT host_id, tokens FROM system.local").one()
            assert m.ring_node is not None
            assert sorted(local.tokens, key=int) == m.ring_node.tokens  # the same ranges
            assert str(local.host_id) != m.ring_node.host_id  # a new node, not an impersonation
        with new.session() as s:
            for table, stats in manifests[0].tables.items():
                assert count(s, table) == stats.rows, table
            rows = s.execute(SimpleStatement("SELECT v FROM ring_bk2.t WHERE id = 7"), timeout=60).one()
            assert rows.v == "row 7"
    finally:
        new.stop()
