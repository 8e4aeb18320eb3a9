"""Cassandra's restore re-layout on real files: snapshot SSTables into table dirs, ``system`` dropped.

The real-node proof (a fresh Cassandra 5.0 serving the restored rows) is
tests/integration/test_backup_cassandra.py; this covers the file moves and the refusals.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetrove.agent.backup import restore
from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.backup.manifest import Manifest
from kubetrove.agent.engines.cassandra.layout import relayout
from kubetrove.agent.protocol import BackupTarget, DirectoryTarget, RestoreRequest
from tests.unit.agent.backup.test_restore import tar_of

SNAP = "snapshots/b1"
META = {
    **{"engine": "cassandra", "engine_version": "5.0.9", "major": "5.0", "method": "physical"},
    **{"tool": "nodetool snapshot", "created_at": "2026-01-01T00:00:00Z"},
}
# What `nodetool snapshot -t b1` leaves under the volume (the agent's --data-dir), as the backup tars it.
SNAPSHOT = {
    f"./data/system_schema/tables-afddfb9dbc1e30688056eed6c302ba09/{SNAP}/nb-1-big-Data.db": b"schema",
    f"./data/system_schema/tables-afddfb9dbc1e30688056eed6c302ba09/{SNAP}/manifest.json": b"{}",
    f"./data/system/local-7ad54392bcdd35a684174e047860b377/{SNAP}/nb-1-big-Data.db": b"host id",
    f"./data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/{SNAP}/nb-2-big-Data.db": b"rows",
    f"./data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/{SNAP}/nb-2-big-Index.db": b"index",
    f"./data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/{SNAP}/.items_note/nb-1-big-Data.db": b"2i",
    f"./data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/{SNAP}/schema.cql": b"CREATE TABLE ks.items ...",
    f"./data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/{SNAP}/manifest.json": b"{}",
    # A keyspace may be called "snapshots": only <table>-<id>/snapshots/<tag> is a snapshot.
    f"./data/snapshots/t-11111111111111111111111111111111/{SNAP}/nb-1-big-Data.db": b"odd name",
}


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def extracted(tmp_path: Path, files: dict[str, bytes]) -> Path:
    staging = tmp_path / "staging"
    for name, data in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_bytes(data)
    return staging


def test_sstables_move_into_their_table_dirs_and_system_is_dropped(tmp_path: Path) -> None:
    staging = extracted(tmp_path, SNAPSHOT)
    relayout(staging)
    assert files_under(staging) == {
        "data/system_schema/tables-afddfb9dbc1e30688056eed6c302ba09/nb-1-big-Data.db": b"schema",
        "data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/nb-2-big-Data.db": b"rows",
        "data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/nb-2-big-Index.db": b"index",
        "data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/.items_note/nb-1-big-Data.db": b"2i",
        "data/snapshots/t-11111111111111111111111111111111/nb-1-big-Data.db": b"odd name",
    }
    assert sorted(p.name for p in (staging / "data").iterdir()) == ["ks", "snapshots", "system_schema"]
    assert not list(staging.glob("data/*/*/snapshots"))


def test_a_backup_without_system_schema_is_refused(tmp_path: Path) -> None:
    staging = extracted(tmp_path, {k: v for k, v in SNAPSHOT.items() if "system_schema" not in k})
    with pytest.raises(ValueError, match=r"no system_schema snapshot \(keyspaces: ks, snapshots, system\)"):
        relayout(staging)


def test_a_clash_with_a_live_file_is_refused(tmp_path: Path) -> None:
    live = "./data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/nb-2-big-Data.db"
    staging = extracted(tmp_path, {**SNAPSHOT, live: b"live"})
    with pytest.raises(ValueError, match="would replace"):
        relayout(staging)


def _restore(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """Store ``files`` as a tar backup "b1" and restore it with the REAL Cassandra methods; the volume."""
    store = DirectoryStore(DirectoryTarget(path=str(tmp_path / "store")))
    writer = store.writer("b1", "sstables.tar")
    writer.write(tar_of(files))
    manifest = Manifest.model_validate({"id": "b1", "artifacts": [writer.complete()], **META})
    store.put_manifest(manifest)
    volume = tmp_path / "volume"
    volume.mkdir()
    target = BackupTarget(directory=DirectoryTarget(path=str(tmp_path / "store")))
    request = RestoreRequest(
        backup_id="b1", source=target, engine="cassandra", major="5.0", data_dir=str(volume)
    )
    restore.restore(request)
    return volume


def test_restore_runs_the_relayout_before_the_commit_point(tmp_path: Path) -> None:
    volume = _restore(tmp_path, SNAPSHOT)
    assert (
        volume / "data/ks/items-0d3c9a40b1a511ef9c2d7b1f3e5a6c88/nb-2-big-Data.db"
    ).read_bytes() == b"rows"
    assert sorted(p.name for p in volume.iterdir()) == [".kubetrove-restored-b1", "data"]
    assert not (volume / "data" / "system").exists()


def test_restore_refuses_an_unusable_snapshot_and_leaves_the_volume_empty(tmp_path: Path) -> None:
    files = {k: v for k, v in SNAPSHOT.items() if "system_schema" not in k}
    with pytest.raises(restore.RestoreRefused, match="backup b1 cannot be restored: the backup holds no"):
        _restore(tmp_path, files)
    assert list((tmp_path / "volume").iterdir()) == []
