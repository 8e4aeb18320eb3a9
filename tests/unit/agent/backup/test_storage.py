"""The directory target: atomic artifacts (partial files until complete), manifest round trip, cleanup."""

from __future__ import annotations

import hashlib
from pathlib import Path

from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.backup.manifest import Artifact, Manifest, artifact_key
from kubetrove.agent.protocol import BackupMethod, DirectoryTarget


def store(tmp_path: Path) -> DirectoryStore:
    return DirectoryStore(DirectoryTarget(path=str(tmp_path)))


def test_writer_is_invisible_until_complete(tmp_path: Path) -> None:
    s = store(tmp_path)
    w = s.writer("b1", "a.bin")
    w.write(b"hello ")
    w.write(b"world")
    assert not (tmp_path / "b1" / "a.bin").exists()
    artifact = w.complete()
    assert artifact == Artifact(name="a.bin", size=11, sha256=hashlib.sha256(b"hello world").hexdigest())
    assert b"".join(s.read("b1", "a.bin")) == b"hello world"


def test_abort_and_abort_incomplete_remove_partials(tmp_path: Path) -> None:
    s = store(tmp_path)
    s.writer("b1", "x").write(b"left behind by a killed agent")  # never completed nor aborted
    w = s.writer("b1", "y")
    w.write(b"zz")
    w.abort()
    assert s.abort_incomplete("b1") == 1
    assert list((tmp_path / "b1").iterdir()) == []


def test_manifest_round_trip_and_delete(tmp_path: Path) -> None:
    s = store(tmp_path)
    arts = [Artifact(name=n, size=1, sha256=hashlib.sha256(n.encode()).hexdigest()) for n in ("a", "b")]
    m = Manifest(
        id="b1",
        engine="postgresql",
        engine_version="15.4",
        major="15",
        method=BackupMethod.LOGICAL,
        tool="pg_dump",
        artifacts=arts,
        created_at="2026-01-01T00:00:00Z",
    )
    assert s.get_manifest("b1") is None
    s.put_manifest(m)
    assert s.get_manifest("b1") == m
    assert m.size == 2 and len(m.sha256) == 64 and m.sha256 not in (arts[0].sha256, arts[1].sha256)
    s.delete("b1")
    assert s.get_manifest("b1") is None and not (tmp_path / "b1").exists()


def test_keys() -> None:
    assert artifact_key("", "b1", "x") == "b1/x"
    assert artifact_key("/team/a/", "b1", "x") == "team/a/b1/x"
