"""``kubetrove-agent restore``: restore a verified backup into a NEW instance, or refuse without touching it.

Refusals (exit 2, nothing touched): no manifest (missing, or an interrupted backup), an unreadable
manifest, another engine, another major version, a non-empty target, a checksum or size mismatch.

Physical (the init container, engine not running). The data dir may be the volume's mount point itself
(MariaDB/MySQL: /var/lib/mysql) or a directory below it (PostgreSQL: PGDATA), so everything happens
INSIDE the data dir, on the volume's filesystem, where a move is a rename(2) and never a copy:

    <data_dir>/.kubetrove-restore-<id>.partial/  every artifact streamed through SHA-256 into the
                                                 extraction tool, then prepared (redo applied /
                                                 checked against backup_manifest)
    <data_dir>/.kubetrove-restore-<id>.ready/    renamed from .partial once verified and prepared:
                                                 the commit point
    <data_dir>/<entries>                         moved up from .ready one by one, then .ready removed
    <data_dir>/.kubetrove-restored-<id>          the marker, last

Invariants: the data dir must be empty (``lost+found`` of a fresh ext4 volume aside) before anything is
written; a refusal or tool failure before the commit point removes everything the restore created
(the volume looks untouched); the engine only starts when the init container exits 0, i.e. after the
marker, so it never sees a half-moved data dir. An init container killed after the commit point is run
again by the kubelet and finishes the moves (nothing is re-downloaded); one killed before it starts over.
The files belong to whoever runs the restore: in a pod that is the engine's uid (the pod's
``runAsUser``, render/security.py), so the engine can open them without a chown.

Logical (into a running, new engine): every artifact is first spooled to local disk and verified (a dump
cannot be checked while it is being applied), then loaded. In a pod the init container only runs the cheap
checks of ``load_manifest`` (a refusal there keeps the engine from ever starting, as for a physical
backup) and exits 0; the agent sidecar loads the dump once the engine accepts writes and holds the pod
out of readiness until it is done (agent/backup/restore_gate.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kubetrove.agent.backup.manifest import Artifact, Manifest
from kubetrove.agent.backup.storage import IncompleteBackup, InvalidManifest, StorageError, Store
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import methods_for
from kubetrove.agent.protocol import BackupMethod, ErrorReply, RestoreRequest

REQUEST_ENV = "KUBETROVE_RESTORE_REQUEST"
# Written in the data dir once a physical restore is in place: the init container runs again whenever
# the pod is recreated, and must then succeed without touching anything (even if the backup is gone).
# A plain file: mariadbd takes only directories in its datadir for databases, PostgreSQL ignores it.
RESTORED_MARKER = ".kubetrove-restored-{id}"
STAGING = ".kubetrove-restore-{id}"  # + PARTIAL / READY (see the module docstring)
PARTIAL, READY = ".partial", ".ready"
# A ring node's restore (the manifest names its tokens): the tokens, comma-separated, for the engine's start
# script (Cassandra's initial_token; datastores/cassandra RING_TOKENS_FILE reads the same name).
RING_TOKENS_FILE = ".kubetrove-ring-tokens"
# Entries a fresh volume may hold that are not data: mkfs.ext4 creates lost+found at the root.
IGNORED = frozenset({"lost+found"})


def restored_marker(request: RestoreRequest) -> Path | None:
    """Where the "this backup is restored here" marker lives (None for a logical restore)."""
    if not request.data_dir:
        return None
    return Path(request.data_dir) / RESTORED_MARKER.format(id=request.backup_id)


class RestoreRefused(Exception):
    """The backup cannot be used; the target was not touched."""


class RestoreFailed(Exception):
    """A restore tool failed; the staging area was removed and the target was not touched."""


def load_manifest(store: Store, request: RestoreRequest) -> Manifest:
    """The backup's manifest, checked against the new instance's engine and major version."""
    where = f"{store.location}{request.backup_id}/"
    try:
        manifest = store.get_manifest(request.backup_id)
    except InvalidManifest as exc:
        raise RestoreRefused(
            f"backup {request.backup_id} is refused: {exc}; the target was not touched"
        ) from None
    except IncompleteBackup as exc:
        raise RestoreRefused(f"backup {request.backup_id} is incomplete: {exc}") from None
    if manifest is None:
        raise RestoreRefused(
            f"backup {request.backup_id} is missing or incomplete: no manifest at {where}"
            " (a backup that did not finish never has one)"
        )
    if manifest.engine != request.engine:
        raise RestoreRefused(
            f"backup {request.backup_id} is of engine {manifest.engine}, not {request.engine}"
        )
    if manifest.major != request.major:
        raise RestoreRefused(
            f"backup {request.backup_id} is of {manifest.engine} {manifest.major}"
            f" ({manifest.engine_version}),"
            f" the new instance runs {request.major}: restore into the same major version, then upgrade"
        )
    return manifest


def inside(directory: Path, name: str) -> Path:
    """``directory / name``, refused unless it is a direct child (the manifest's pattern already says so:
    this is the second fence, where a file is actually opened)."""
    path = directory / name
    if path.parent != directory or name in {"", ".", ".."} or Path(name).is_absolute():
        raise RestoreRefused(f"artifact name {name!r} is not a plain file name; the target was not touched")
    return path


def _check_digest(backup_id: str, artifact: Artifact, digest: hashlib._Hash, size: int) -> None:
    if size != artifact.size or digest.hexdigest() != artifact.sha256:
        raise RestoreRefused(
            f"backup {backup_id} is corrupt: artifact {artifact.name} has sha256 {digest.hexdigest()} and"
            f" {size} bytes, the manifest says {artifact.sha256} and {artifact.size};"
            " the target was not touched"
        )


def _run(argv: Sequence[str], env: Mapping[str, str] | None = None, stdin: Path | None = None) -> None:
    with tempfile.TemporaryFile() as err, stdin.open("rb") if stdin else open(os.devnull, "rb") as inp:
        try:
            code = subprocess.run(  # noqa: S603 (argv from methods.py)
                argv, stdin=inp, stdout=subprocess.DEVNULL, stderr=err, env=env, check=False
            ).returncode
        except FileNotFoundError:
            raise RestoreFailed(f"{argv[0]} not found on PATH") from None
        if code != 0:
            err.seek(0)
            raise RestoreFailed(
                f"{argv[0]} exited with {code}: {err.read()[-2000:].decode(errors='replace')}"
            )


def extract_verified(store: Store, backup_id: str, artifact: Artifact, argv: Sequence[str]) -> None:
    """Stream one artifact through SHA-256 into ``argv``'s stdin; refuse on a digest mismatch."""
    digest, size = hashlib.sha256(), 0
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(  # noqa: S603 (argv from methods.py)
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err
            )
        except FileNotFoundError:
            raise RestoreFailed(f"{argv[0]} not found on PATH") from None
        assert proc.stdin is not None
        feeding = True
        try:
            for chunk in store.read(backup_id, artifact.name):
                digest.update(chunk)
                size += len(chunk)
                if feeding:
                    try:
                        proc.stdin.write(chunk)
                    except BrokenPipeError:
                        feeding = False  # the tool gave up (corrupt input?): keep reading to name the cause
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        _check_digest(backup_id, artifact, digest, size)
        if code != 0:
            err.seek(0)
            raise RestoreFailed(
                f"{argv[0]} exited with {code}: {err.read()[-2000:].decode(errors='replace')}"
            )


def _adopt(path: Path, like: Path) -> None:
    """Give ``path`` (recursively) the owner of ``like`` when running as root (the volume's owner)."""
    if os.geteuid() != 0:
        return
    st = like.stat()
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, st.st_uid, st.st_gid)


def _check_empty(data_dir: Path, own: set[str]) -> None:
    """Refuse a data dir holding anything but a fresh volume's leftovers and this restore's staging."""
    found = sorted(p.name for p in data_dir.iterdir() if p.name not in IGNORED | own)
    if found:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise RestoreRefused(
            f"{data_dir} is not empty ({shown}): a restore only creates a new instance's data"
        )


def _missing_top(path: Path) -> Path | None:
    """The highest missing ancestor of ``path`` (``path`` itself, or above), or None if it exists."""
    top = None
    for p in (path, *path.parents):
        if p.exists():
            return top
        top = p
    return top


def _stage(store: Store, manifest: Manifest, partial: Path, ready: Path) -> None:
    """Extract and prepare every artifact in ``partial``, then rename it to ``ready`` (the commit point)."""
    plan = methods_for(manifest.engine).physical_restore(partial)
    shutil.rmtree(partial, ignore_errors=True)  # an earlier attempt killed before its commit point
    partial.mkdir(mode=0o700)
    for artifact in manifest.artifacts:
        extract_verified(store, manifest.id, artifact, plan.extract)
    for argv in plan.prepare:
        _run(argv)
    if plan.relayout is not None:  # e.g. Cassandra: snapshot SSTables into their table dirs
        try:
            plan.relayout(partial)
        except ValueError as exc:
            raise RestoreRefused(f"backup {manifest.id} cannot be restored: {exc}") from None
    if manifest.ring_node is not None:  # this data belongs to those ranges: the node must own them
        (partial / RING_TOKENS_FILE).write_text(",".join(manifest.ring_node.tokens))
    partial.rename(ready)


def _move_up(ready: Path, data_dir: Path) -> None:
    """Move every entry of ``ready`` into ``data_dir`` (renames on one filesystem), then drop ``ready``."""
    for entry in sorted(ready.iterdir()):
        # The data dir held nothing but IGNORED (checked before the commit point): nothing is replaced.
        entry.rename(data_dir / entry.name)
    ready.rmdir()


def restore_physical(request: RestoreRequest, store: Store, manifest: Manifest) -> Path:
    """Extract, verify and prepare inside ``data_dir``, then move the result into place."""
    if not request.data_dir:
        raise RestoreRefused("a physical restore needs data_dir")
    data_dir = Path(request.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise RestoreRefused(f"{data_dir} is not a directory: a restore only creates a new instance's data")
    staging = STAGING.format(id=manifest.id)
    partial, ready = data_dir / (staging + PARTIAL), data_dir / (staging + READY)
    mode = methods_for(manifest.engine).physical_restore(partial).mode
    if not ready.is_dir():  # else: committed by an earlier attempt that died while moving; finish it
        created = _missing_top(data_dir)
        if created is None:
            _check_empty(data_dir, {partial.name})
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            _stage(store, manifest, partial, ready)
            _adopt(created or ready, created.parent if created else data_dir)
        except BaseException:
            shutil.rmtree(created or partial, ignore_errors=True)
            raise
    _move_up(ready, data_dir)
    if mode is not None:
        data_dir.chmod(mode)
    marker = restored_marker(request)
    if marker is not None:
        marker.touch()
    return data_dir


def restore_logical(
    request: RestoreRequest,
    store: Store,
    manifest: Manifest,
    config: EngineConfig,
    spool: Path,
    before_load: Callable[[], None] | None = None,
) -> None:
    """Spool and verify every artifact, then load each into the running engine.

    ``before_load`` runs once, after every digest matched and before the first load statement: the
    agent records there that the engine may from now on hold a partial restore.
    """
    work = Path(tempfile.mkdtemp(prefix=f"kt-restore-{manifest.id}-", dir=spool))
    try:
        spooled: list[tuple[Artifact, Path]] = []
        for artifact in manifest.artifacts:
            path = inside(work, artifact.name)
            digest, size = hashlib.sha256(), 0
            with path.open("wb") as f:
                for chunk in store.read(manifest.id, artifact.name):
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            _check_digest(manifest.id, artifact, digest, size)
            spooled.append((artifact, path))
        methods = methods_for(manifest.engine)
        if before_load is not None:
            before_load()
        for artifact, path in spooled:  # every artifact verified: only now is the engine touched
            plan = methods.logical_restore(config, work, path, artifact.database)
            for name, content in plan.files.items():
                fd = os.open(work / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(content)
            _run(plan.argv, env={**os.environ, **plan.env}, stdin=plan.stdin)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def restore(
    request: RestoreRequest, config: EngineConfig | None = None, spool: Path | None = None
) -> Manifest:
    """Restore ``request``; RestoreRefused / RestoreFailed leave the target untouched."""
    store = open_store(request.source)
    manifest = load_manifest(store, request)
    if manifest.method is BackupMethod.PHYSICAL:
        restore_physical(request, store, manifest)
    else:
        if config is None:
            raise RestoreRefused("a logical restore needs the engine's connection settings")
        restore_logical(request, store, manifest, config, spool or Path(tempfile.gettempdir()))
    return manifest


def check_or_restore(request: RestoreRequest) -> str:
    """The init container's work: restore a physical backup; only check a logical one (the agent loads it)."""
    store = open_store(request.source)
    manifest = load_manifest(store, request)
    if manifest.method is BackupMethod.LOGICAL:
        return (
            f"backup {manifest.id} ({manifest.engine} {manifest.engine_version}, {manifest.method}) is"
            " usable; the agent loads it once the engine accepts writes"
        )
    restore_physical(request, store, manifest)
    return f"restored backup {manifest.id} ({manifest.engine} {manifest.engine_version}, {manifest.method})"


def member_ordinal(hostname: str) -> int | None:
    """The StatefulSet ordinal in a pod's hostname (``db-2`` -> 2), or None when it has none."""
    match = re.search(r"-([0-9]+)$", hostname)
    return int(match.group(1)) if match else None


def for_member(request: RestoreRequest, hostname: str) -> RestoreRequest:
    """The request of this member: a ring's member ``i`` restores ``member_backups[i]`` (see the protocol).

    A member without its own backup (a ring larger than the backup's, a hostname without an ordinal) is
    refused: it would start as an empty node owning ranges whose data is elsewhere.
    """
    if not request.member_backups:
        return request
    number = member_ordinal(hostname)
    if number is None or number >= len(request.member_backups):
        raise RestoreRefused(
            f"{hostname} is no member 0..{len(request.member_backups) - 1} of the ring this backup holds"
        )
    return request.model_copy(update={"backup_id": request.member_backups[number], "member_backups": []})


def skips_restore(request: RestoreRequest, hostname: str) -> bool:
    """A member other than 0 of a cluster whose members clone from the restored member 0 leaves its volume
    empty (RestoreRequest.first_member_only): its engine container clones it once member 0 serves."""
    return request.first_member_only and (member_ordinal(hostname) or 0) != 0


def main(argv: Sequence[str] | None = None) -> int:
    """``kubetrove-agent restore`` (init container): 0 done or checked, 2 refused, 1 failed (untouched)."""
    p = argparse.ArgumentParser(
        prog="kubetrove-agent restore", description="restore a backup into a new instance"
    )
    p.add_argument("--request-file", help=f"RestoreRequest JSON (default: ${REQUEST_ENV})")
    args = p.parse_args(argv)
    raw = Path(args.request_file).read_text() if args.request_file else os.environ.get(REQUEST_ENV)
    if not raw:
        p.error(f"--request-file or ${REQUEST_ENV} is required")
    request = RestoreRequest.model_validate_json(raw)
    hostname = socket.gethostname()  # a pod's hostname is its name
    if skips_restore(request, hostname):
        print(f"backup {request.backup_id} is restored on member 0 only; this member clones from it")
        return 0
    try:
        request = for_member(request, hostname)
        marker = restored_marker(request)
        if marker is not None and marker.exists():
            print(f"backup {request.backup_id} is already restored in {request.data_dir}: nothing to do")
            return 0
        print(check_or_restore(request))
    except RestoreRefused as exc:
        print(ErrorReply(error="restore_refused", detail=str(exc)).model_dump_json(), file=sys.stderr)
        return 2
    except (RestoreFailed, StorageError, OSError) as exc:  # OSError: the volume (full, read-only)
        print(ErrorReply(error="restore_failed", detail=str(exc)).model_dump_json(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
