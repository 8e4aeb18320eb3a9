"""The runner against a real subprocess and a real directory store: success, tool failure, cancellation."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from kubetrove.agent.backup import runner
from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.backup.manifest import Artifact
from kubetrove.agent.backup.storage import Bytes, Seen, Writer
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    BackupTarget,
    DirectoryTarget,
    TableStats,
)
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
    data = b"x" * (3 * runner.PIPE_SIZE + 5)
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


def test_stats_are_taken_while_the_tool_streams_after_its_first_mib(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The tool writes 2 MiB, then waits for the stats to have been taken: with stats taken before the
    # tool (or after it) this never completes; with stats taken too early, bytes_done is below the mark.
    marker = tmp_path / "stats-taken"
    script = (
        "import os, sys, time; sys.stdout.buffer.write(b'y' * 2 * 1024 * 1024); sys.stdout.flush()\n"
        f"deadline = time.time() + 30\nwhile not os.path.exists({str(marker)!r}) and time.time() < deadline:"
        " time.sleep(0.01)\n"
        f"sys.stderr.write('position: 0-1-9'); sys.exit(0 if os.path.exists({str(marker)!r}) else 3)"
    )
    job, store = setup(monkeypatch, tmp_path / "store", script)
    seen_at: list[int] = []

    def stats(*_: object) -> dict[str, TableStats]:
        seen_at.append(job.reply().bytes_done)
        if seen_at[-1]:  # not the stats taken before the copy
            marker.touch()
        return {"db.t": TableStats(rows=7)}

    monkeypatch.setattr(runner, "table_stats", stats)
    job.run()
    assert job.reply().phase is BackupPhase.COMPLETED, job.reply().error
    assert len(seen_at) == 2 and seen_at[0] == 0 and seen_at[1] >= runner.STATS_AFTER
    manifest = store.get_manifest("b1")
    assert manifest is not None and manifest.tables == {"db.t": TableStats(rows=7)}


def test_a_short_stream_still_records_stats(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    job, store = setup(monkeypatch, tmp_path, writes("b'abc'"))
    monkeypatch.setattr(runner, "table_stats", lambda *a: {"db.t": TableStats(rows=1, checksum="9")})
    job.run()
    manifest = store.get_manifest("b1")
    assert manifest is not None and manifest.tables == {"db.t": TableStats(rows=1, checksum="9")}


def test_a_failing_store_kills_the_tool_and_fails_the_backup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The tool would write forever: only the agent killing it lets run() return.
    pid_file = tmp_path / "tool.pid"
    script = f"import os, sys\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n" + (
        "while True: sys.stdout.buffer.write(b'z' * 65536)"
    )
    job, store = setup(monkeypatch, tmp_path / "store", script)
    real_writer = store.writer

    def failing_writer(backup_id: str, name: str) -> Writer:
        inner = real_writer(backup_id, name)

        class Full:
            def write(self, data: Bytes) -> None:
                inner.write(data)

            def write_from(self, fd: int, seen: Seen) -> None:
                def seen_then_fail(chunk: memoryview) -> None:
                    seen(chunk)
                    if job.reply().bytes_done > 4 * 1024 * 1024:
                        raise OSError(28, "No space left on device")

                inner.write_from(fd, seen_then_fail)

            def complete(self) -> Artifact:
                return inner.complete()

            def abort(self) -> None:
                inner.abort()

        return Full()

    monkeypatch.setattr(store, "writer", failing_writer)
    job.run()
    reply = job.reply()
    assert reply.phase is BackupPhase.FAILED and "No space left" in (reply.error or "")
    assert list((tmp_path / "store" / "b1").iterdir()) == [] and store.get_manifest("b1") is None
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left blocked on a full pipe
        os.kill(int(pid_file.read_text()), 0)


def test_stats_failing_after_the_stream_leaves_nothing_stored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    job, store = setup(monkeypatch, tmp_path, writes("b'w' * (2 * 1024 * 1024)"))

    def broken(*_: object) -> dict[str, TableStats]:
        raise ConnectionError("server went away")

    monkeypatch.setattr(runner, "table_stats", broken)
    job.run()
    assert job.reply().phase is BackupPhase.FAILED and "server went away" in (job.reply().error or "")
    assert not (tmp_path / "b1").exists() and store.get_manifest("b1") is None


def test_a_table_written_while_the_backup_ran_is_marked_changed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Before the copy, then after it: orders grew (an application writing), items did not, new appeared.
    taken = iter(
        [
            {"db.orders": TableStats(rows=4270), "db.items": TableStats(rows=3, checksum="c")},
            {
                "db.orders": TableStats(rows=4275),
                "db.items": TableStats(rows=3, checksum="c"),
                "db.new": TableStats(rows=1),
            },
        ]
    )
    job, store = setup(monkeypatch, tmp_path, writes("b'abc'"))
    monkeypatch.setattr(runner, "table_stats", lambda *a: next(taken))
    job.run()
    manifest = store.get_manifest("b1")
    assert manifest is not None
    assert manifest.tables == {
        "db.orders": TableStats(rows=4275, changed=True),
        "db.items": TableStats(rows=3, checksum="c"),
    }


def test_a_failure_of_the_first_stats_fails_the_backup_before_any_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran = tmp_path / "tool-ran"
    job, store = setup(monkeypatch, tmp_path / "store", f"open({str(ran)!r}, 'w').close()")

    def down(*_: object) -> dict[str, TableStats]:
        raise OSError("engine unavailable")

    monkeypatch.setattr(runner, "table_stats", down)
    job.run()
    assert job.reply().phase is BackupPhase.FAILED and "engine unavailable" in (job.reply().error or "")
    assert not ran.exists() and store.get_manifest("b1") is None
