"""The runner against a real subprocess and a real directory store: success, tool failure, cancellation."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from kubetrove.agent.backup import runner
from kubetrove.agent.backup.storage import DirectoryStore
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, BackupTarget, DirectoryTarget
from tests.unit.agent.backup.fakes import ToolEngine, writes

SOURCE = runner.Source("cassandra", "5.0.9", EngineConfig(), ["ks"], position="fallback")


def setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str
) -> tuple[runner.BackupJob, DirectoryStore]:
    monkeypatch.setattr(runner, "methods_for", lambda engine: ToolEngine(script))
    monkeypatch.setattr(runner, "table_stats", lambda *a: {})
    target = BackupTarget(directory=DirectoryTarget(path=str(tmp_path)))
    request = BackupRequest(
        id="b1", method=BackupMethod.PHYSICAL, target=target, created_at="2026-01-01T00:00:00Z"
    )
    store = DirectoryStore(DirectoryTarget(path=str(tmp_path)))
    return runner.BackupJob(request, SOURCE, store), store


def test_success_streams_hashes_and_writes_the_manifest_last(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = b"x" * (3 * runner.CHUNK + 5)
    job, store = setup(monkeypatch, tmp_path, writes("b'x' * " + str(len(data))))
    job.run()
    reply = job.reply()
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    assert reply.sha256 == hashlib.sha256(data).hexdigest() and reply.size_bytes == len(data)
    assert reply.position == "0-1-7" and reply.tool == "faketool" and reply.bytes_done == len(data)
    assert (tmp_path / "b1" / "data.bin").read_bytes() == data
    manifest = store.get_manifest("b1")
    assert manifest is not None and manifest.major == "5.0" and manifest.created_at == "2026-01-01T00:00:00Z"


def test_position_falls_back_to_the_one_read_before(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    job, _ = setup(monkeypatch, tmp_path, writes("b'abc'", stderr="nothing here"))
    job.run()
    assert job.reply().position == "fallback"


def test_tool_failure_leaves_no_artifact_and_no_manifest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job, store = setup(monkeypatch, tmp_path, writes("b'partial'", stderr="disk on fire", code=3))
    job.run()
    reply = job.reply()
    assert reply.phase is BackupPhase.FAILED
    assert reply.error is not None and "exited with 3: disk on fire" in reply.error
    assert list((tmp_path / "b1").iterdir()) == []
    assert store.get_manifest("b1") is None


def test_cancel_kills_the_tool_and_aborts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = "import sys, time; sys.stdout.buffer.write(b'a' * 100); sys.stdout.flush(); time.sleep(60)"
    job, store = setup(monkeypatch, tmp_path, script)
    thread = threading.Thread(target=job.run)
    thread.start()
    while job.reply().bytes_done == 0:
        job.done.wait(0.01)
    job.cancel()
    thread.join(30)
    assert job.reply().phase is BackupPhase.FAILED
    assert "killed by signal 9" in (job.reply().error or "")
    assert list((tmp_path / "b1").iterdir()) == [] and store.get_manifest("b1") is None


def test_registry_is_idempotent_and_trusts_a_stored_manifest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job, store = setup(monkeypatch, tmp_path, writes("b'abc'"))
    registry = runner.BackupRegistry()
    first, started = registry.start(job.request, lambda: SOURCE, store)
    assert started
    first.done.wait(30)
    again, started_again = registry.start(job.request, lambda: SOURCE, store)
    assert again is first and not started_again
    fresh, started_fresh = runner.BackupRegistry().start(job.request, lambda: SOURCE, store)
    assert not started_fresh and fresh.reply().phase is BackupPhase.COMPLETED
    assert fresh.reply().sha256 == first.reply().sha256
