"""Run a backup: the tool as a subprocess, its stdout piped into the storage writer, progress for GET.

Order of one run (a thread per backup): write the tools' secret files (0600, private dir) -> ``before``
commands -> per step: stream stdout to a writer (SHA-256 and size computed on the way, the position looked
for in stderr and in the first/last 64 KiB of stdout; the table stats are taken on a side thread once the
tool has written its first MiB) -> the manifest, LAST -> ``after``.
The table stats are taken twice: before the copy starts and once it is under way (``recorded``). A table
whose stats differ was written while the backup ran; the copy holds some state in between, unknown, so
the manifest marks it ``changed`` and a verification does not compare its rows (comparing them failed
every verified backup of a database under writes: 4275 rows counted, 4270 in the copy). A table that
exists at only one end is left out.
Any failure (the tool exits non-zero or is killed, the store fails, the agent is shutting down) aborts
the writer and kills the tool, and artifacts an earlier step stored whole are deleted again, so a failed
run leaves no artifact and never a manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kubetrove.agent.backup.manifest import Artifact, Manifest
from kubetrove.agent.backup.storage import Store
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import BackupPlan, Step
from kubetrove.agent.engines.registry import methods_for, table_stats
from kubetrove.agent.protocol import BackupPhase, BackupReply, BackupRequest, NodeTokens, TableStats

PIPE_SIZE = 1024 * 1024  # the default /proc/sys/fs/pipe-max-size: the most an unprivileged agent gets
STATS_AFTER = 1024 * 1024  # bytes of tool output after which the table stats start (see _SideStats)
PEEK = 64 * 1024  # bytes of stdout kept at each end to find the position in
F_SETPIPE_SZ = 1031  # Linux fcntl: a 1 MiB pipe (64 KiB by default) means 16x fewer, bigger reads


class ToolFailed(Exception):
    """A backup tool exited non-zero or was killed."""


def utc_now() -> str:
    """RFC 3339 UTC, seconds precision."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stderr_tail(path: Path, limit: int = 2000) -> str:
    """The end of a tool's stderr, for error messages."""
    try:
        return path.read_bytes()[-limit:].decode(errors="replace").strip()
    except OSError:
        return ""


class _Peek:
    """The first and last ``PEEK`` bytes of a stream (where tools print their position)."""

    def __init__(self) -> None:
        self.head, self._tail = b"", bytearray()

    @property
    def tail(self) -> bytes:
        return bytes(self._tail[-PEEK:])

    def add(self, chunk: memoryview) -> None:
        # Each byte is copied at most once (the chunk is the writer's buffer, reused after this call):
        # a dump tool writes 4 KiB at a time, and re-slicing a 64 KiB tail per read was a 16x copy.
        if len(self.head) < PEEK:
            self.head += chunk[: PEEK - len(self.head)]
        self._tail += chunk[-PEEK:]
        if len(self._tail) > 2 * PEEK:
            del self._tail[:-PEEK]  # O(1): CPython moves a bytearray's start, not its bytes


class _SideStats:
    """The table stats, taken on a side thread while the tool streams (``start``) or at the end.

    They are a full ``COUNT(*)`` per table: seconds on a big one, which used to delay every backup's
    start. They start once the tool has written ``STATS_AFTER`` bytes: a dump tool writes data only
    after it took its snapshot and released ``FLUSH TABLES WITH READ LOCK``, which a long SELECT
    started earlier would hold up (https://mariadb.com/kb/en/flush/), stalling the source's writers.
    """

    def __init__(self, take: Callable[[], dict[str, TableStats]]) -> None:
        self._take = take
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-stats")
        self._future: Future[dict[str, TableStats]] | None = None

    def start(self) -> None:
        if self._future is None:
            self._future = self._pool.submit(self._take)

    def result(self) -> dict[str, TableStats]:
        self.start()  # a stream shorter than STATS_AFTER: take them now
        assert self._future is not None
        return self._future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # a failed run still lets its query finish and disconnect


def recorded(before: dict[str, TableStats], after: dict[str, TableStats]) -> dict[str, TableStats]:
    """What the manifest records: each table present at both ends, marked ``changed`` when it was written
    in between."""
    return {
        table: stats if before[table] == stats else stats.model_copy(update={"changed": True})
        for table, stats in after.items()
        if table in before
    }


@dataclass(frozen=True)
class Source:
    """What the routes read from the engine when the backup was asked for."""

    engine: str
    engine_version: str
    config: EngineConfig
    databases: list[str]
    position: str | None = None  # fallback when the tool does not print one
    ring_node: NodeTokens | None = None  # a ring node: who it is (host id, tokens), for a ring restore


class BackupJob:
    """One backup run; ``run`` blocks (call it in a thread), ``reply`` and ``cancel`` from anywhere."""

    def __init__(
        self, request: BackupRequest, source: Source, store: Store, clock: Callable[[], str] = utc_now
    ):
        self.request, self.source, self.store, self.clock = request, source, store, clock
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._cancelled = False
        self._bytes_done = 0  # while RUNNING: counted per read, not copied into the reply per read
        self._stats = _SideStats(dict)
        self._reply = BackupReply(
            id=request.id,
            phase=BackupPhase.PENDING,
            engine=source.engine,
            method=request.method,
            engine_version=source.engine_version,
            location=store.location + request.id + "/",
        )
        self.done = threading.Event()

    @classmethod
    def finished(cls, manifest: Manifest, request: BackupRequest, source: Source, store: Store) -> BackupJob:
        """A job for a backup some earlier agent already completed (its manifest exists)."""
        job = cls(request, source, store)
        job._completed(manifest)
        job.done.set()
        return job

    def reply(self) -> BackupReply:
        """The current state, as GET /v1/backups/{id} returns it."""
        with self._lock:
            if self._reply.phase is BackupPhase.RUNNING:
                return self._reply.model_copy(update={"bytes_done": self._bytes_done})
            return self._reply

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._reply = self._reply.model_copy(update=changes)

    def _completed(self, manifest: Manifest, throughput: float | None = None) -> None:
        self._update(
            phase=BackupPhase.COMPLETED,
            tool=manifest.tool,
            engine_version=manifest.engine_version,
            started_at=manifest.started_at,
            completed_at=manifest.completed_at,
            size_bytes=manifest.size,
            bytes_done=manifest.size,
            ring_node=manifest.ring_node,
            sha256=manifest.sha256,
            position=manifest.position,
            throughput_mib_per_s=throughput,
        )

    def cancel(self) -> None:
        """Kill the running tool; the run then fails and aborts its upload."""
        with self._lock:
            self._cancelled = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def run(self) -> None:
        """Take the backup; never raises (the outcome is in ``reply()``)."""
        work = Path(tempfile.mkdtemp(prefix="kt-backup-"))  # 0700: it holds the tools' secret files
        plan: BackupPlan | None = None
        artifacts: list[Artifact] = []
        started = time.monotonic()
        try:
            methods = methods_for(self.source.engine)
            plan = methods.backup(
                self.request.method, self.source.config, work, self.source.databases, self.request.id
            )
            self._update(phase=BackupPhase.RUNNING, tool=plan.tool, started_at=self.clock())
            for name, content in plan.files.items():
                fd = os.open(work / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(content)
            src = self.source
            take = functools.partial(table_stats, src.engine, src.config, src.databases)
            before = take()  # before the copy starts
            self._stats = _SideStats(take)
            for argv in plan.before:
                self._run_quiet(argv, plan, work)
            started = time.monotonic()
            position = None
            for step in plan.steps:
                artifact, found = self._stream(step, plan, work)
                artifacts.append(artifact)
                position = position or found
            seconds = max(time.monotonic() - started, 1e-6)
            tables = recorded(before, self._stats.result())
            manifest = Manifest(
                id=self.request.id,
                engine=self.source.engine,
                engine_version=self.source.engine_version,
                major=methods.major(self.source.engine_version),
                method=self.request.method,
                tool=plan.tool,
                position=position or self.source.position,
                artifacts=artifacts,
                tables=tables,
                ring_node=self.source.ring_node,
                created_at=self.request.created_at,
                started_at=self._reply.started_at,
                completed_at=self.clock(),
            )
            if self._cancelled:
                raise ToolFailed("cancelled: the agent is shutting down")
            self.store.put_manifest(manifest)  # LAST: from here on the backup is complete
            self._completed(manifest, throughput=round(manifest.size / seconds / 2**20, 2))
        except Exception as exc:
            self._update(
                phase=BackupPhase.FAILED,
                completed_at=self.clock(),
                error=str(exc) or type(exc).__name__,
                bytes_done=self._bytes_done,
            )
            if artifacts:  # stored whole before a later step or the stats failed: no manifest names them
                with contextlib.suppress(Exception):
                    self.store.delete(self.request.id)
        finally:
            self._stats.close()
            if plan is not None:
                for argv in plan.after:
                    with contextlib.suppress(Exception):
                        self._run_quiet(argv, plan, work)
            shutil.rmtree(work, ignore_errors=True)
            self.done.set()

    def _env(self, plan: BackupPlan) -> dict[str, str]:
        return {**os.environ, **plan.env}

    def _run_quiet(self, argv: tuple[str, ...], plan: BackupPlan, work: Path) -> None:
        done = subprocess.run(  # noqa: S603 (argv from methods.py)
            argv, env=self._env(plan), cwd=work, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise ToolFailed(
                f"{argv[0]} exited with {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}"
            )

    def _seen(self, peek: _Peek, chunk: memoryview) -> None:
        peek.add(chunk)
        self._bytes_done += len(chunk)  # one writer thread; reply() reads it (an int: atomic)
        if self._bytes_done >= STATS_AFTER:
            self._stats.start()

    def _stream(self, step: Step, plan: BackupPlan, work: Path) -> tuple[Artifact, str | None]:
        """Pipe one tool's stdout into one artifact; abort it unless the tool succeeded."""
        err_path = work / f"{step.artifact}.stderr"
        writer = self.store.writer(self.request.id, step.artifact)
        proc: subprocess.Popen[bytes] | None = None
        try:
            with err_path.open("wb") as err:
                proc = subprocess.Popen(  # noqa: S603 (argv from methods.py)
                    step.argv, stdout=subprocess.PIPE, stderr=err, env=self._env(plan), cwd=work
                )
            with self._lock:
                self._proc = proc
                cancelled = self._cancelled
            if cancelled:
                proc.kill()
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
            peek = _Peek()
            writer.write_from(fd, lambda chunk: self._seen(peek, chunk))
            proc.stdout.close()
            code = proc.wait()
            if code != 0:
                how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
                raise ToolFailed(f"{step.argv[0]} {how}: {stderr_tail(err_path)}")
            artifact = writer.complete()
        except BaseException:
            if proc is not None and proc.poll() is None:
                proc.kill()  # the store failed: the tool must not keep running into a closed pipe
                proc.wait()
            writer.abort()
            raise
        finally:
            with self._lock:
                self._proc = None
        if step.database is not None:
            artifact = artifact.model_copy(update={"database": step.database})
        position = None
        if plan.position is not None:
            text = (
                err_path.read_bytes().decode(errors="replace")
                + "\n"
                + (peek.head + b"\n" + peek.tail).decode("latin-1")
            )
            match = plan.position.search(text)
            position = match[1].strip() if match else None
        return artifact, position


class BackupRegistry:
    """The agent's backups by id (in memory; storage is the truth across agent restarts)."""

    def __init__(self) -> None:
        self._jobs: dict[str, BackupJob] = {}
        self._lock = threading.Lock()

    def get(self, backup_id: str) -> BackupJob | None:
        """The job with this id, if this agent knows it."""
        with self._lock:
            return self._jobs.get(backup_id)

    def start(
        self, request: BackupRequest, source: Callable[[], Source], store: Store
    ) -> tuple[BackupJob, bool]:
        """Start a backup unless one with this id is known or already complete in storage. Blocking.

        Returns the job and whether it was started now. A backup interrupted by an agent crash has no
        manifest; its leftover multipart uploads are aborted before it starts again.
        """
        with self._lock:
            known = self._jobs.get(request.id)
            if known is not None:
                return known, False
            src = source()
            manifest = store.get_manifest(request.id)
            if manifest is not None:
                job = BackupJob.finished(manifest, request, src, store)
                self._jobs[request.id] = job
                return job, False
            store.abort_incomplete(request.id)
            job = BackupJob(request, src, store)
            self._jobs[request.id] = job
        threading.Thread(target=job.run, name=f"backup-{request.id}", daemon=True).start()
        return job, True

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Kill every running tool and wait for the runs to abort their uploads (agent shutdown)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        for job in jobs:
            job.done.wait(timeout)
