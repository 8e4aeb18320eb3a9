"""Physical backups of a real mongod 6.0.5 replica set through the real agent API to a real MinIO,
restored by placing the files before a NEW mongod starts, verified by counts, dbHash and validate.

The backup is taken on a secondary (as the operator picks one): its data files under ``fsyncLock``,
streamed as a tar, then unlocked; the primary takes writes throughout. mongodump is not run here (the
database tools cannot be obtained on this machine): only its command lines are tested (unit).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bson import Binary, Decimal128
from pymongo import WriteConcern

from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.manifest import MANIFEST_NAME
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.client import AgentError
from kubetrove.agent.engines.registry import table_stats
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    MembershipAction,
    RestoreRequest,
    SetMember,
    VerifyRequest,
)
from tests.integration.cluster_harness import until
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import (
    CREATED_AT,
    backup,
    children,
    corrupt_object,
    listed_keys,
    post_backup,
    wait_backup,
)
from tests.integration.servers._proc import free_port
from tests.integration.servers.minio import MinioServer
from tests.integration.servers.mongod import Mongod, ReplicaSet, new_member, wait_until

MAJOR = "6.0"
SOURCE_DBS = ["crm", "shop"]


def write_known_data(rs: ReplicaSet, bulk_docs: int = 0) -> None:
    """Two databases, typed values (unicode, decimal, binary, nulls, nesting), an index; w:majority."""
    with rs.client() as c:
        shop = c.get_database("shop", write_concern=WriteConcern(w="majority"))
        shop.items.insert_many(
            [
                {
                    "_id": i,
                    "name": f"item-{i}-ünï",
                    "price": Decimal128(f"{i}.{i % 100:02d}"),
                    "note": None if i % 7 else f"note {i}",
                    "raw": Binary(bytes([i % 256] * 8)),
                    "tags": [{"k": "n", "v": i}],
                }
                for i in range(500)
            ]
        )
        shop.items.create_index("name", unique=True)
        crm = c.get_database("crm", write_concern=WriteConcern(w="majority"))
        crm.people.insert_many([{"email": f"p{i}@example.org"} for i in range(300)])
        if bulk_docs:
            crm.bulk.insert_many([{"_id": i, "pad": "x" * 1024} for i in range(bulk_docs)])


def documents(server: Mongod) -> dict[str, list[dict[str, Any]]]:
    """Every document of the source collections in _id order: compared exactly."""
    with server.client() as c:
        return {
            f"{db}.{coll}": list(c[db][coll].find({}).sort("_id", 1))
            for db in SOURCE_DBS
            for coll in sorted(c[db].list_collection_names())
        }


@pytest.fixture(scope="module")
def source(mongod_replica_set_factory: Callable[..., ReplicaSet]) -> ReplicaSet:
    rs = mongod_replica_set_factory()
    write_known_data(rs)
    return rs


def secondary_of(rs: ReplicaSet) -> Mongod:
    primary = rs.primary()
    return next(m for m in rs.members if m is not primary)


def request(backup_id: str, minio: MinioServer, prefix: str) -> BackupRequest:
    target = minio.target(prefix=prefix)
    return BackupRequest(id=backup_id, method=BackupMethod.PHYSICAL, target=target, created_at=CREATED_AT)


def restore_request(req: BackupRequest, data_dir: Path, major: str = MAJOR) -> RestoreRequest:
    return RestoreRequest(
        backup_id=req.id, source=req.target, engine="mongodb", major=major, data_dir=str(data_dir)
    )


def copy_processes() -> list[int]:
    """PIDs of this test process's children running the physical copy (``filecopy stream``)."""
    found = []
    for pid in children(os.getpid(), Path(sys.executable).name):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"kubetrove.agent.engines.mongodb.filecopy" in cmdline and b"stream" in cmdline:
            found.append(pid)
    return found


def fsync_locked(member: Mongod) -> bool:
    with member.client() as c:
        return bool(c.admin.command("currentOp").get("fsyncLock"))


async def test_physical_backup_of_a_secondary_restores_into_a_new_mongod_and_verifies(
    source: ReplicaSet, minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    member = secondary_of(source)
    agent = await start_agent("mongodb", member.engine_config())
    req = request("rt-physical", minio, "mongodb-physical")
    reply = await backup(agent.url, agent.token, req)
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert reply.tool == "fsyncLock+tar" and reply.size_bytes and reply.sha256
    assert not fsync_locked(member)  # unlocked once the files were read
    with member.client() as c:
        applied = c.admin.command("replSetGetStatus")["optimes"]["appliedOpTime"]["ts"]
    assert reply.position == f"{applied.time}:{applied.inc}"  # nothing was written since
    assert f"mongodb-physical/rt-physical/{MANIFEST_NAME}" in listed_keys(minio, "mongodb-physical/")

    manifest = restore_mod.load_manifest(open_store(req.target), restore_request(req, tmp_path / "x"))
    assert manifest.major == MAJOR and manifest.engine_version == "6.0.5"
    assert manifest.tables["shop.items"].rows == 500 and manifest.tables["crm.people"].rows == 300
    assert manifest.tables["shop.items"].checksum  # dbHash of the collection

    # Restore: the files placed into an empty data dir, then a new standalone mongod starts on them
    # (a DatabaseInstance; its root login is the backup's).
    base = tmp_path / "new"
    restore_mod.restore(restore_request(req, base / "data"))
    new = Mongod(base, free_port())
    new.start()
    try:
        wait_until(lambda: new.hello().get("isWritablePrimary") is True, 60, new.log)
        assert documents(new) == documents(member)
        assert table_stats("mongodb", new.engine_config(), SOURCE_DBS) == manifest.tables
        # What a verification restore does: POST /v1/verify on the new instance's agent.
        verifier = await start_agent("mongodb", new.engine_config())
        verified = await verifier.client.verify(VerifyRequest(backup_id=req.id, source=req.target))
        assert verified.check_tool == "validate"
        assert verified.observed == verified.recorded == manifest.tables
        assert {c.table for c in verified.checks} >= {"shop.items", "crm.people"}
        assert all(c.ok for c in verified.checks), verified.checks
        with new.client() as c:
            assert "name_1" in c.shop.items.index_information()  # indexes came with the files
    finally:
        new.remove()


async def test_a_corrupt_object_is_refused_and_the_data_dir_untouched(
    source: ReplicaSet, minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    agent = await start_agent("mongodb", secondary_of(source).engine_config())
    req = request("bad", minio, "mongodb-corrupt")
    assert (await backup(agent.url, agent.token, req)).phase is BackupPhase.COMPLETED
    corrupt_object(minio, "mongodb-corrupt/bad/backup.tar")
    volume = tmp_path / "volume"
    volume.mkdir()
    with pytest.raises(restore_mod.RestoreRefused, match=r"corrupt: artifact backup\.tar has sha256"):
        restore_mod.restore(restore_request(req, volume / "data"))
    assert list(volume.iterdir()) == []


async def test_a_killed_copy_fails_leaves_nothing_complete_and_the_member_unlocked(
    mongod_replica_set_factory: Callable[..., ReplicaSet],
    minio: MinioServer,
    start_agent: StartAgent,
    tmp_path: Path,
) -> None:
    rs = mongod_replica_set_factory()
    write_known_data(rs, bulk_docs=60_000)  # ~60 MiB: the copy lasts long enough to be caught locked
    member = secondary_of(rs)
    agent = await start_agent("mongodb", member.engine_config())
    req = request("killed", minio, "mongodb-killed")
    await post_backup(agent.url, agent.token, req)
    # SIGKILL the copy while it holds the lock: fsyncUnlock in its own ``finally`` never runs.
    await until(lambda: fsync_locked(member), "the copy holds the lock", 60, every=0.01)
    (pid,) = copy_processes()
    os.kill(pid, signal.SIGKILL)
    reply = await wait_backup(agent.url, agent.token, req.id)
    assert reply.phase is BackupPhase.FAILED and reply.error and "was killed by signal 9" in reply.error
    # The plan's ``after`` step unlocks it (the runner's clean-up, run once the failure is reported).
    await until(lambda: not fsync_locked(member), "the member unlocked", 60)
    assert listed_keys(minio, "mongodb-killed/") == []
    with pytest.raises(restore_mod.RestoreRefused, match="missing or incomplete"):
        restore_mod.restore(restore_request(req, tmp_path / "d"))
    with rs.client() as c:  # the set replicates again through the unlocked secondary
        c.crm.after.with_options(write_concern=WriteConcern(w=3, wtimeout=30_000)).insert_one({"ok": 1})


async def test_restore_into_a_new_replica_set_member_0_restores_the_others_sync_from_it(
    source: ReplicaSet, minio: MinioServer, start_agent: StartAgent, tmp_path: Path
) -> None:
    member = secondary_of(source)
    agent = await start_agent("mongodb", member.engine_config())
    req = request("rt-set", minio, "mongodb-set")
    assert (await backup(agent.url, agent.token, req)).phase is BackupPhase.COMPLETED
    expected = documents(member)

    # As the operator restores a DatabaseCluster (restore_first_member_only): member 0's data dir gets
    # the files before mongod starts; members 1 and 2 start empty. All run with --replSet and the new
    # cluster's key file. Member 0's files still hold the SOURCE set's config (other hosts).
    new_base = tmp_path / "set"
    new_base.mkdir()
    keyfile = new_base / "keyfile"
    keyfile.write_text(source.keyfile.read_text())  # any key: the members only need to share it
    keyfile.chmod(0o600)
    first = Mongod(new_base / "m0", free_port(), source.name, keyfile)
    restore_mod.restore(restore_request(req, first.dbpath))
    first.start()
    others = [new_member(new_base, i, keyfile) for i in (1, 2)]
    new = ReplicaSet(source.name, [first, *others], keyfile)
    try:
        agents = [(await start_agent("mongodb", m.engine_config())).client for m in new.members]
        wanted = [SetMember(id=i, host=m.address) for i, m in enumerate(new.members)]
        reply = await agents[0].set_members(wanted)  # the membership loop's call to member 0
        assert reply.action is MembershipAction.INITIATED
        assert reply.added == [m.address for m in new.members]
        assert set(reply.removed) == {m.address for m in source.members}  # the source's hosts
        new.wait_healthy(120)
        for m in new.members:  # the others got every document by initial sync from member 0
            assert documents(m) == expected
        # A member of THIS set that its config does not list is not forced into it: 409.
        with pytest.raises(AgentError) as refused:
            await agents[1].set_members([*wanted, SetMember(id=3, host="127.0.0.1:1")])
        assert refused.value.status == 409
    finally:
        new.stop()
