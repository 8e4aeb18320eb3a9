"""``spec.backup.verify`` of a ring's backup on real Cassandra 5.0: what the verification does, step by step.

A real three-node ring is backed up node by node through its agents (one snapshot per node, to MinIO).
The verification's throwaway is a ring of as many nodes (reconcile/backup/verify_plan.py): here each new
node's directory gets what its init container would restore (``RestoreRequest`` from the operator's
``restore_request`` with the node backups, ``for_member`` by the member's name, ``restore.restore``), and
each starts with the tokens the restore wrote beside its data (``.kubetrove-ring-tokens``, which the start
script gives Cassandra as ``initial_token``). Then every member's real agent is asked ``POST /v1/verify``
about the snapshot it restored, and the operator's own rule (``verify_plan.compare_members``) gives the
verdict.

The keyspace has replication factor 1, so every row lives on exactly one node: a backup missing one
node's data cannot be made whole by the other replicas. The second restore uses a backup whose node 2
snapshot lost that keyspace's SSTables (its tar rewritten, its manifest otherwise the same): the verdict
must fail (CountsDiffer). With RF 3 the other two nodes would still hold every row and the restore would
serve all of them, which is why RF 1 is what can show a node's data missing.
https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/backups.html
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.manifest import Artifact, artifact_key
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, VerifyRequest
from kubetrove.api.specs import ClusterSpec
from kubetrove.reconcile.backup import restore as restore_rules
from kubetrove.reconcile.backup import verify_plan
from tests.integration.conftest_backup import CREATED_AT, backup
from tests.integration.ring_harness import RingRig, ring_rig
from tests.integration.servers import cassandra_ring
from tests.integration.servers.minio import MinioServer
from tests.integration.test_cassandra_ring_backup import manifest

KEYSPACE, ROWS, PREFIX = "ring_vf1", 600, "cass-ring"
THROWAWAY = "bk-verify"  # the throwaway ring's name: its pods are bk-verify-0..2
SPEC = ClusterSpec.model_validate(
    {"datastore": {"type": "cassandra", "version": "5.0"}, "storage": {"size": "1Gi"}, "replicas": 3}
)


async def backed_up(rig: RingRig, minio: MinioServer) -> list[str]:
    """RF 1 data, then one backup per node ("ringvf-<i>"): the stored ids, in member order."""
    await rig.agents[rig.pod(0)].ensure_database(KEYSPACE, 1)
    with rig.ring.session() as s:
        s.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.t (id int PRIMARY KEY, v text)", timeout=60)
        insert = s.prepare(f"INSERT INTO {KEYSPACE}.t (id, v) VALUES (?, ?)")
        for i in range(ROWS):
            s.execute(insert, (i, f"row {i}"))
    ids = []
    for i, pod in enumerate(rig.pods):
        request = BackupRequest(
            id=f"ringvf-{i}",
            method=BackupMethod.PHYSICAL,
            target=minio.target(prefix=PREFIX),
            created_at=CREATED_AT,
        )
        reply = await backup(rig.urls[pod], rig.token, request)
        assert reply.phase is BackupPhase.COMPLETED, reply.error
        ids.append(reply.id)
    return ids


def without_keyspace(minio: MinioServer, backup_id: str, new_id: str) -> str:
    """A copy of node backup ``backup_id`` whose snapshot lost every SSTable of KEYSPACE (the rest, the
    manifest's recorded counts and tokens included, unchanged): a node backup missing its data."""
    m = manifest(minio, backup_id)
    (artifact,) = m.artifacts
    s3 = minio.client()
    body = s3.get_object(Bucket=minio.bucket, Key=artifact_key(PREFIX, backup_id, artifact.name))[
        "Body"
    ].read()
    out, dropped = io.BytesIO(), 0
    with tarfile.open(fileobj=io.BytesIO(body)) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src.getmembers():
            if KEYSPACE in Path(member.name).parts:
                dropped += 1
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    assert dropped > 0, f"node backup {backup_id} held no SSTable of {KEYSPACE}"
    data = out.getvalue()
    lost = Artifact(name=artifact.name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    s3.put_object(Bucket=minio.bucket, Key=artifact_key(PREFIX, new_id, artifact.name), Body=data)
    copy = m.model_copy(update={"id": new_id, "artifacts": [lost]})
    s3.put_object(
        Bucket=minio.bucket, Key=artifact_key(PREFIX, new_id, "manifest.json"), Body=copy.model_dump_json()
    )
    return new_id


def restored_ring(
    minio: MinioServer, ids: list[str], workdir: Path, first_address: int
) -> cassandra_ring.Ring:
    """What the throwaway ring's members do: member i restores node i's snapshot, then starts with the
    tokens its restore wrote (the start script's ``initial_token``, ``auto_bootstrap: false``)."""
    new = cassandra_ring.plan(workdir, first_address=first_address, size=len(ids))
    request = restore_rules.restore_request(ids[0], minio.target(prefix=PREFIX), SPEC, member_backups=ids)
    extra = []
    for i, node in enumerate(new.nodes):
        mine = restore_mod.for_member(request, f"{THROWAWAY}-{i}").model_copy(
            update={"data_dir": str(node.workdir)}
        )
        assert mine.backup_id == ids[i]
        restore_mod.restore(mine)
        tokens = (node.workdir / restore_mod.RING_TOKENS_FILE).read_text()
        extra.append(f"initial_token: {tokens}\nauto_bootstrap: false\n")
    return cassandra_ring.form(new, extra)


async def verdict(ring: cassandra_ring.Ring, minio: MinioServer, ids: list[str]) -> verify_plan.Outcome:
    """POST /v1/verify on every member's real agent (each about its own node backup), judged as the
    operator judges (verify_plan.compare_members)."""
    async with ring_rig(ring) as rig:
        replies = []
        for pod, backup_id in zip(rig.pods, ids, strict=True):
            request = VerifyRequest(backup_id=backup_id, source=minio.target(prefix=PREFIX))
            replies.append((pod, await rig.agents[pod].verify(request)))
    for pod, reply in replies:
        assert reply.check_tool == "nodetool verify", pod
        assert f"{KEYSPACE}.t" in {c.table for c in reply.checks}, pod  # each node's SSTables checked
    return verify_plan.compare_members(replies)


async def restored_verdict(
    minio: MinioServer, ids: list[str], workdir: Path, first_address: int, what: str
) -> verify_plan.Outcome:
    """The verdict on node backups ``ids`` in a throwaway ring restored from them, stopped after."""
    ring = await asyncio.to_thread(restored_ring, minio, ids, workdir, first_address)
    print(f"\n{what} restored and up in {ring.startup_seconds:.0f} s", file=sys.stderr)
    try:
        return await verdict(ring, minio, ids)
    finally:
        ring.stop()


async def test_a_rings_backup_verifies_in_a_ring_and_fails_when_a_nodes_data_is_missing(
    rig: RingRig, minio: MinioServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    try:
        ids = await backed_up(rig, minio)
        recorded = {m.tables[f"{KEYSPACE}.t"].rows for m in (manifest(minio, i) for i in ids)}
        assert recorded == {ROWS}  # every node recorded the ring-wide count

        ok_dir = tmp_path_factory.mktemp("verify-ok")
        outcome = await restored_verdict(minio, ids, ok_dir, 21, "throwaway ring of 3")
        assert (outcome.ok, outcome.reason) == (True, "Verified"), outcome.message
        assert outcome.message.endswith("on each of the 3 nodes (ring-0, ring-1, ring-2)"), outcome.message
        assert "nodetool verify OK" in outcome.message

        lost = [*ids[:2], without_keyspace(minio, ids[2], "ringvf-2-lost")]
        lost_dir = tmp_path_factory.mktemp("verify-lost")
        outcome = await restored_verdict(minio, lost, lost_dir, 24, "throwaway ring (node 2's data lost)")
        assert (outcome.ok, outcome.reason) == (False, "CountsDiffer"), outcome.message
        print(f"verdict with node 2's data lost: {outcome.message}", file=sys.stderr)
        got = int(outcome.message.rsplit(", ", 1)[1].split()[0])
        assert outcome.message.startswith(f"ring-0: {KEYSPACE}.t: {ROWS} rows at backup time, ")
        assert 0 < got < ROWS  # node 2's share of the rows, and only it, is gone
    finally:
        with rig.ring.session() as s:
            s.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
