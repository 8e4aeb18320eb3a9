"""The agent's half of ``spec.restoreFrom``: load a LOGICAL backup into the running engine, and keep the
pod out of readiness (so out of the Services) until the restore is done.

The init container (``kubetrove-agent restore``, restore.py) restores a physical backup before the
engine starts; for a logical one it only checks the manifest (a refusal there keeps the engine from
starting) and exits 0. This gate then runs once, in the background, when the agent starts:

    restored marker on the data volume   -> DONE (a restarted agent, a recreated pod: never load twice)
    loading marker, no restored marker   -> FAILED, for good (see below)
    physical manifest                    -> DONE (the init container put the data in place)
    logical manifest                     -> PENDING until the engine accepts writes, RESTORING while
                                            restore_logical spools + verifies every sha256 and loads,
                                            then the restored marker -> DONE
    refusal (missing, corrupt, ...)      -> REFUSED, for good; nothing was loaded

Markers (in ``request.data_dir``, on the data volume, so they outlive the pod):
``.kubetrove-restore-<id>.loading`` is written (and fsynced) after every digest matched and right before
the first load statement; ``.kubetrove-restored-<id>`` (``restore.restored_marker``) after the last.

Invariants:
- ``ready`` is True only in DONE: ``/readyz`` answers 503 before, so a half-restored database never
  serves traffic. REFUSED and FAILED are final: the pod stays unready and the operator reports why.
- Never retried on partial data: an agent that (re)starts and finds "loading" without "restored" was
  interrupted mid-load (OOM, node loss, pod deletion); a dump replayed over part of itself fails or
  duplicates rows, so the only safe path is a new instance.
- Before the loading marker nothing was touched: a storage or spool error there is retried with
  back-off (state PENDING, the error in ``detail``); a refusal is not (the backup itself is wrong).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from kubetrove.agent.backup.manifest import Manifest
from kubetrove.agent.backup.restore import (
    RestoreFailed,
    RestoreRefused,
    load_manifest,
    restore_logical,
    restored_marker,
)
from kubetrove.agent.backup.storage import StorageError, Store
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.base import DriverError, EngineDriver
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import BackupMethod, RestoreProgress, RestoreRequest, RestoreState

log = logging.getLogger("kubetrove.agent.restore")

LOADING_MARKER = ".kubetrove-restore-{id}.loading"
PARTIAL = "the database holds a partial restore; delete the instance and restore again"
INTERRUPTED = f"interrupted while loading: {PARTIAL}"
# Returns None when the engine accepts writes, else why not yet (shown in ``detail`` while PENDING).
WritableProbe = Callable[[], str | None]
T = TypeVar("T")


class _Final(Exception):
    """Ends the gate in a final state (REFUSED or FAILED)."""

    def __init__(self, state: RestoreState, detail: str) -> None:
        super().__init__(detail)
        self.state, self.detail = state, detail


def engine_not_writable(driver: EngineDriver) -> str | None:
    """None when ``driver``'s engine answers and accepts writes, else why not (the gate's default probe)."""
    try:
        status = driver.status()
    except DriverError as exc:
        return str(exc)
    return "it is read-only" if status.read_only else None


def loading_marker(request: RestoreRequest) -> Path | None:
    """Where "a load has started" is recorded (beside the restored marker), or None without a data dir."""
    marker = restored_marker(request)
    return marker.with_name(LOADING_MARKER.format(id=request.backup_id)) if marker else None


def _touch_durably(path: Path) -> None:
    """Create ``path`` and fsync it and its directory: the marker must survive a node crash."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class RestoreGate:
    """The restore of ``request`` in this pod: its progress, and whether the pod may be ready."""

    def __init__(
        self,
        request: RestoreRequest,
        config: EngineConfig,
        writable: WritableProbe,
        spool: Path,
        *,
        poll_seconds: float = 2.0,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        self.request = request
        self.config = config
        self.writable = writable
        self.spool = spool
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._progress = RestoreProgress(
            backup_id=request.backup_id, state=RestoreState.PENDING, detail="starting"
        )

    @property
    def progress(self) -> RestoreProgress:
        """What ``GET /v1/restore`` answers."""
        return self._progress

    @property
    def ready(self) -> bool:
        """The pod may serve: the backup is in place."""
        return self._progress.state is RestoreState.DONE

    def _set(self, state: RestoreState, detail: str, manifest: Manifest | None = None) -> None:
        method = manifest.method if manifest is not None else self._progress.method
        self._progress = RestoreProgress(
            backup_id=self.request.backup_id, method=method, state=state, detail=detail
        )
        level = logging.WARNING if state in (RestoreState.REFUSED, RestoreState.FAILED) else logging.INFO
        log.log(level, "restore %s: %s", state.value, detail, extra={"backup": self.request.backup_id})

    async def run(self) -> None:
        """Drive the restore to DONE, REFUSED or FAILED (see the module docstring); never raises."""
        try:
            await self._run()
        except _Final as end:
            self._set(end.state, end.detail)
        except Exception as exc:  # a bug must not end in a ready pod: report it and stay unready
            log.exception("restore gate crashed")
            self._set(RestoreState.FAILED, f"internal error: {exc!r}; see the agent log")

    async def _run(self) -> None:
        restored, loading = restored_marker(self.request), loading_marker(self.request)
        if restored is None or loading is None:
            raise _Final(RestoreState.FAILED, "the restore request has no data_dir to record progress in")
        if await asyncio.to_thread(restored.exists):
            self._set(RestoreState.DONE, f"backup {self.request.backup_id} is restored on this volume")
            return
        if await asyncio.to_thread(loading.exists):
            raise _Final(RestoreState.FAILED, INTERRUPTED)
        store, manifest = await self._retrying(self._read_manifest, loading)
        if manifest.method is BackupMethod.PHYSICAL:
            self._set(RestoreState.DONE, "restored by the init container before the engine started", manifest)
            return
        while (why := await asyncio.to_thread(self.writable)) is not None:
            self._set(RestoreState.PENDING, f"waiting for the engine to accept writes: {why}", manifest)
            await asyncio.sleep(self.poll_seconds)

        async def load() -> None:
            self._set(RestoreState.RESTORING, _describe(manifest), manifest)
            await asyncio.to_thread(
                restore_logical,
                self.request,
                store,
                manifest,
                self.config,
                self.spool,
                lambda: _touch_durably(loading),
            )

        await self._retrying(load, loading)
        await asyncio.to_thread(_touch_durably, restored)
        self._set(RestoreState.DONE, f"loaded backup {manifest.id} ({manifest.tool})", manifest)

    async def _read_manifest(self) -> tuple[Store, Manifest]:
        store = open_store(self.request.source)
        return store, await asyncio.to_thread(load_manifest, store, self.request)

    async def _retrying(self, step: Callable[[], Awaitable[T]], loading: Path) -> T:
        """``step()``; storage/volume errors are retried with back-off while ``loading`` does not exist."""
        delay = self.poll_seconds
        while True:
            try:
                return await step()
            except RestoreRefused as exc:
                raise _Final(RestoreState.REFUSED, str(exc)) from exc
            except RestoreFailed as exc:  # a load tool failed: only ever after the loading marker
                raise _Final(RestoreState.FAILED, f"{exc}; {PARTIAL}") from exc
            except (StorageError, OSError) as exc:
                if await asyncio.to_thread(loading.exists):
                    raise _Final(RestoreState.FAILED, f"{exc}; {PARTIAL}") from exc
                self._set(RestoreState.PENDING, f"nothing loaded yet, retrying in {delay:.0f}s: {exc}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_seconds)


def _describe(manifest: Manifest) -> str:
    return (
        f"spooling and verifying {len(manifest.artifacts)} artifact(s) ({manifest.size / 2**20:.1f} MiB)"
        f" of {manifest.tool} backup {manifest.id}, then loading"
    )
