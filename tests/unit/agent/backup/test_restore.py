"""Restore against a directory store and a real tar: it verifies before touching, and refuses clearly."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from kubetrove.agent.backup import restore
from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.backup.manifest import MANIFEST_NAME, Manifest
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.protocol import BackupMethod, BackupTarget, DirectoryTarget, NodeTokens, RestoreRequest
from tests.unit.agent.backup.fakes import ToolEngine


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[BackupTarget, Path]:
    """A complete backup "b1" (a tar artifact + manifest) in a directory store; the volume to restore into."""
    monkeypatch.setattr(restore, "methods_for", lambda engine: ToolEngine(""))
    target = BackupTarget(directory=DirectoryTarget(path=str(tmp_path / "store")))
    store = DirectoryStore(DirectoryTarget(path=str(tmp_path / "store")))
    writer = store.writer("b1", "data.tar")
    writer.write(tar_of({"sstable-1.db": b"a" * 5000, "sub/sstable-2.db": b"b" * 10}))
    artifact = writer.complete()
    store.put_manifest(
        Manifest(
            id="b1",
            engine="cassandra",
            engine_version="5.0.9",
            major="5.0",
            method=BackupMethod.PHYSICAL,
            tool="nodetool snapshot",
            artifacts=[artifact],
            created_at="2026-01-01T00:00:00Z",
        )
    )
    volume = tmp_path / "volume"
    volume.mkdir()
    return target, volume


def req(target: BackupTarget, volume: Path, **changes: object) -> RestoreRequest:
    fields = {
        "backup_id": "b1",
        "source": target,
        "engine": "cassandra",
        "major": "5.0",
        "data_dir": str(volume / "data"),
    }
    return RestoreRequest.model_validate({**fields, **changes})


def test_restores_into_a_new_data_dir(stored: tuple[BackupTarget, Path]) -> None:
    target, volume = stored
    restore.restore(req(target, volume))
    assert (volume / "data" / "sstable-1.db").read_bytes() == b"a" * 5000
    assert (volume / "data" / "sub" / "sstable-2.db").read_bytes() == b"b" * 10
    # Nothing beside the data dir, no staging left in it; the marker makes a rerun of the init container
    # a no-op.
    assert [p.name for p in volume.iterdir()] == ["data"]
    assert sorted(p.name for p in (volume / "data").iterdir()) == [
        ".kubetrove-restored-b1",
        "sstable-1.db",
        "sub",
    ]


def test_restores_into_a_mount_point_holding_lost_and_found(stored: tuple[BackupTarget, Path]) -> None:
    # MariaDB/MySQL: the data dir IS the volume's mount point (it cannot be renamed onto), and a fresh
    # ext4 volume holds lost+found.
    target, volume = stored
    (volume / "lost+found").mkdir()
    restore.restore(req(target, volume, data_dir=str(volume)))
    assert (volume / "sstable-1.db").read_bytes() == b"a" * 5000
    assert sorted(p.name for p in volume.iterdir()) == [
        ".kubetrove-restored-b1",
        "lost+found",
        "sstable-1.db",
        "sub",
    ]


def test_a_restore_killed_after_its_commit_point_is_finished(stored: tuple[BackupTarget, Path]) -> None:
    # Killed while moving: part of the entries are in place, the rest still in .ready. The rerun moves
    # the rest without reading the store (the backup may be gone by then).
    target, volume = stored
    ready = volume / ".kubetrove-restore-b1.ready"
    (ready / "sub").mkdir(parents=True)
    (ready / "sub" / "sstable-2.db").write_bytes(b"b" * 10)
    (volume / "sstable-1.db").write_bytes(b"a" * 5000)  # moved before the kill
    request = req(target, volume, data_dir=str(volume), source=BackupTarget(
        directory=DirectoryTarget(path=str(volume.parent / "gone"))).model_dump())  # fmt: skip
    restore.restore_physical(request, open_store(request.source), _manifest(target))
    assert (volume / "sub" / "sstable-2.db").read_bytes() == b"b" * 10
    assert sorted(p.name for p in volume.iterdir()) == [".kubetrove-restored-b1", "sstable-1.db", "sub"]


def test_a_restore_killed_before_its_commit_point_starts_over(stored: tuple[BackupTarget, Path]) -> None:
    target, volume = stored
    partial = volume / ".kubetrove-restore-b1.partial"
    partial.mkdir()
    (partial / "half-written").write_bytes(b"x")
    restore.restore(req(target, volume, data_dir=str(volume)))
    assert sorted(p.name for p in volume.iterdir()) == [".kubetrove-restored-b1", "sstable-1.db", "sub"]


def test_another_backups_staging_counts_as_data(stored: tuple[BackupTarget, Path]) -> None:
    target, volume = stored
    (volume / ".kubetrove-restore-b0.ready").mkdir()
    with pytest.raises(restore.RestoreRefused, match=r"is not empty \(\.kubetrove-restore-b0\.ready\)"):
        restore.restore(req(target, volume, data_dir=str(volume)))


def _manifest(target: BackupTarget) -> Manifest:
    manifest = open_store(target).get_manifest("b1")
    assert manifest is not None
    return manifest


def test_an_existing_empty_data_dir_is_replaced(stored: tuple[BackupTarget, Path]) -> None:
    target, volume = stored
    (volume / "data").mkdir()
    restore.restore(req(target, volume))
    assert (volume / "data" / "sstable-1.db").exists()


def test_corrupt_artifact_is_refused_before_touching(
    stored: tuple[BackupTarget, Path], tmp_path: Path
) -> None:
    target, volume = stored
    path = tmp_path / "store" / "b1" / "data.tar"
    raw = bytearray(path.read_bytes())
    raw[600] ^= 0x01  # inside the first file's data: tar still extracts it, only the digest can tell
    path.write_bytes(bytes(raw))
    with pytest.raises(restore.RestoreRefused, match=r"b1 is corrupt: artifact data\.tar has sha256"):
        restore.restore(req(target, volume))
    assert list(volume.iterdir()) == []


def test_tool_failure_leaves_nothing(stored: tuple[BackupTarget, Path], tmp_path: Path) -> None:
    target, volume = stored
    store = DirectoryStore(DirectoryTarget(path=str(tmp_path / "store")))
    writer = store.writer("b1", "data.tar")
    writer.write(b"this is not a tar archive" * 100)  # stored intact (digest matches) but unreadable
    artifact = writer.complete()
    manifest = store.get_manifest("b1")
    assert manifest is not None
    store.put_manifest(manifest.model_copy(update={"artifacts": [artifact]}))
    with pytest.raises(restore.RestoreFailed, match="tar exited with"):
        restore.restore(req(target, volume))
    assert list(volume.iterdir()) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backup_id": "nope"}, "backup nope is missing or incomplete: no manifest"),
        ({"engine": "mongodb"}, "is of engine cassandra, not mongodb"),
        ({"major": "4.1"}, r"cassandra 5\.0 \(5\.0\.9\), the new instance runs 4\.1"),
    ],
)
def test_refusals(stored: tuple[BackupTarget, Path], changes: dict[str, str], message: str) -> None:
    target, volume = stored
    with pytest.raises(restore.RestoreRefused, match=message):
        restore.restore(req(target, volume, **changes))
    assert list(volume.iterdir()) == []


def test_non_empty_data_dir_is_refused(stored: tuple[BackupTarget, Path]) -> None:
    target, volume = stored
    (volume / "data").mkdir()
    (volume / "data" / "ibdata1").write_bytes(b"live data")
    with pytest.raises(restore.RestoreRefused, match="is not empty"):
        restore.restore(req(target, volume))
    assert [p.name for p in (volume / "data").iterdir()] == ["ibdata1"]


def test_unreadable_manifest_counts_as_incomplete(stored: tuple[BackupTarget, Path], tmp_path: Path) -> None:
    target, volume = stored
    (tmp_path / "store" / "b1" / MANIFEST_NAME).write_text('{"id": "b1"')
    with pytest.raises(restore.RestoreRefused, match="b1 is incomplete: unreadable manifest"):
        restore.restore(req(target, volume))


def test_cli_exit_codes(
    stored: tuple[BackupTarget, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, volume = stored
    request_file = tmp_path / "req.json"
    request_file.write_text(req(target, volume, major="4.1").model_dump_json())
    assert restore.main(["--request-file", str(request_file)]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "restore_refused"
    request_file.write_text(req(target, volume).model_dump_json())
    assert restore.main(["--request-file", str(request_file)]) == 0
    assert (volume / "data" / "sstable-1.db").exists()


def test_rerun_after_a_restore_is_a_no_op_even_without_the_backup(
    stored: tuple[BackupTarget, Path], tmp_path: Path
) -> None:
    # A recreated pod runs the init container again; the backup may have been pruned meanwhile.
    target, volume = stored
    request_file = tmp_path / "req.json"
    request_file.write_text(req(target, volume).model_dump_json())
    assert restore.main(["--request-file", str(request_file)]) == 0
    (volume / "data" / "written-later").write_text("engine data")
    DirectoryStore(DirectoryTarget(path=str(tmp_path / "store"))).delete("b1")
    assert restore.main(["--request-file", str(request_file)]) == 0
    assert (volume / "data" / "written-later").read_text() == "engine data"


@pytest.mark.parametrize(
    ("hostname", "ordinal"), [("db-0", 0), ("db-12", 12), ("my-db-3", 3), ("laptop", None), ("db-", None)]
)
def test_member_ordinal_from_the_pod_hostname(hostname: str, ordinal: int | None) -> None:
    assert restore.member_ordinal(hostname) == ordinal


def test_only_member_zero_restores_when_the_others_clone(
    stored: tuple[BackupTarget, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, volume = stored
    request = req(target, volume).model_copy(update={"first_member_only": True})
    assert restore.skips_restore(request, "db-1") and not restore.skips_restore(request, "db-0")
    assert not restore.skips_restore(req(target, volume), "db-1")  # every member restores by default
    request_file = tmp_path / "req.json"
    request_file.write_text(request.model_dump_json())
    monkeypatch.setattr(restore.socket, "gethostname", lambda: "db-1")
    assert restore.main(["--request-file", str(request_file)]) == 0
    assert not volume.exists() or not any(volume.iterdir())  # left empty: it clones from member 0
    monkeypatch.setattr(restore.socket, "gethostname", lambda: "db-0")
    assert restore.main(["--request-file", str(request_file)]) == 0
    assert (volume / "data" / "sstable-1.db").exists()


def test_a_ring_member_restores_its_own_nodes_backup_and_records_its_tokens(
    stored: tuple[BackupTarget, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, volume = stored
    store = DirectoryStore(DirectoryTarget(path=str(tmp_path / "store")))
    manifest = store.get_manifest("b1")
    assert manifest is not None
    tokens = ["-9000", "17", "4242"]
    who = {"host_id": "h1", "address": "10.0.0.2", "tokens": tokens}
    store.put_manifest(
        manifest.model_copy(update={"id": "b1-1", "ring_node": NodeTokens.model_validate(who)})
    )
    for name in ("data.tar",):  # the same artifact under node 1's id
        w = store.writer("b1-1", name)
        for chunk in store.read("b1", name):
            w.write(chunk)
        w.complete()
    request = req(target, volume, member_backups=["b1", "b1-1"])
    assert restore.for_member(request, "db-0").backup_id == "b1"
    mine = restore.for_member(request, "db-1")
    assert (mine.backup_id, mine.member_backups) == ("b1-1", [])
    with pytest.raises(restore.RestoreRefused, match=r"db-2 is no member 0\.\.1 of the ring"):
        restore.for_member(request, "db-2")
    request_file = tmp_path / "req.json"
    request_file.write_text(request.model_dump_json())
    monkeypatch.setattr(restore.socket, "gethostname", lambda: "db-1")
    assert restore.main(["--request-file", str(request_file)]) == 0
    data = volume / "data"
    assert (data / restore.RING_TOKENS_FILE).read_text() == "-9000,17,4242"
    assert (data / ".kubetrove-restored-b1-1").exists() and (data / "sstable-1.db").exists()
    assert restore.main(["--request-file", str(request_file)]) == 0  # the marker: a no-op the second time
    monkeypatch.setattr(restore.socket, "gethostname", lambda: "db-2")
    assert restore.main(["--request-file", str(request_file)]) == 2  # a member without a node's backup


def test_the_start_script_reads_the_tokens_file_the_restore_writes() -> None:
    from kubetrove.datastores.cassandra import strategy

    assert strategy.RING_TOKENS_FILE == restore.RING_TOKENS_FILE
