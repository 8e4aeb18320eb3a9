"""Storage targets behind one small Protocol: S3-compatible object storage (s3.py) and a directory (PVC).

Writers compute the SHA-256 and size while the bytes stream through; nothing is spooled locally. The
SHA-256 is kept in the manifest and verified before any restore touches a target (end-to-end
integrity); each hop may add its own check (the S3 writer's per-part CRC32). An artifact becomes
visible only when complete (an S3 multipart upload is completed, a ``.partial`` file renamed);
``abort()`` and ``abort_incomplete`` remove what a failed or killed run left.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pydantic

from kubetrove.agent.backup.manifest import MANIFEST_NAME, Artifact, Manifest
from kubetrove.agent.protocol import BackupTarget, DirectoryTarget

MiB = 1024 * 1024
READ_CHUNK = 4 * MiB
FILE_BUFFER = 4 * MiB  # the directory writer's one reused read buffer
Bytes = bytes | bytearray | memoryview  # what hashlib, zlib and os.write take without a copy
Seen = Callable[[memoryview], None]  # told about every chunk read from the tool (valid during the call)


class StorageError(Exception):
    """The target refused or failed an operation."""


class IncompleteBackup(StorageError):
    """A manifest exists but cannot be read: treated exactly like a missing one."""


class Writer(Protocol):
    """One artifact being written: ``write`` many times, then exactly one of ``complete`` or ``abort``."""

    def write(self, data: Bytes) -> None:
        """Append bytes (may block while earlier parts upload)."""
        ...

    def write_from(self, fd: int, seen: Seen) -> None:
        """Append everything read from ``fd`` until EOF, reading into the writer's own buffers."""
        ...

    def complete(self) -> Artifact:
        """Make the artifact durable and visible; return its size and digest."""
        ...

    def abort(self) -> None:
        """Discard everything written; never raises."""
        ...


class Store(Protocol):
    """A backup target: artifacts and the manifest of each backup id."""

    location: str

    def writer(self, backup_id: str, name: str) -> Writer:
        """Start writing one artifact."""
        ...

    def read(self, backup_id: str, name: str) -> Iterator[bytes]:
        """The artifact's bytes, in chunks."""
        ...

    def put_manifest(self, manifest: Manifest) -> None:
        """Write the manifest (last: it is what makes the backup complete)."""
        ...

    def get_manifest(self, backup_id: str) -> Manifest | None:
        """The manifest, or None when the backup is missing or incomplete."""
        ...

    def abort_incomplete(self, backup_id: str) -> int:
        """Discard leftovers of an earlier, interrupted attempt at this id; return how many."""
        ...

    def delete(self, backup_id: str) -> None:
        """Remove the manifest first (the backup stops being complete), then every artifact."""
        ...


class Digest:
    """Size and SHA-256 of the bytes seen so far."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def update(self, data: Bytes) -> None:
        self.sha.update(data)
        self.size += len(data)

    def artifact(self, name: str) -> Artifact:
        return Artifact(name=name, size=self.size, sha256=self.sha.hexdigest())


def parse_manifest(raw: bytes, where: str) -> Manifest:
    try:
        return Manifest.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise IncompleteBackup(f"unreadable manifest at {where}: {exc.error_count()} problem(s)") from None


# -- a directory (PVC) ---------------------------------------------------------------------------------

PARTIAL = ".partial"


class FileWriter:
    """Writes ``<name>.partial``; ``complete`` fsyncs and renames it to ``<name>``: atomic."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._partial = path.with_name(path.name + PARTIAL)
        self._file = self._partial.open("wb", buffering=0)  # unbuffered: write_from hands whole chunks
        self._digest = Digest()

    def write(self, data: Bytes) -> None:
        self._digest.update(data)
        view = memoryview(data).cast("B")
        while view:  # a raw file may take less than asked
            view = view[self._file.write(view) or 0 :]

    def write_from(self, fd: int, seen: Seen) -> None:
        buf = memoryview(bytearray(FILE_BUFFER))  # one buffer, reused for every read
        while n := os.readv(fd, [buf]):
            chunk = buf[:n]
            seen(chunk)
            self.write(chunk)

    def complete(self) -> Artifact:
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._partial, self._path)
        return self._digest.artifact(self._path.name)

    def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)


class DirectoryStore:
    """Backups under ``<path>/<id>/``."""

    def __init__(self, target: DirectoryTarget) -> None:
        self.root = Path(target.path)
        self.location = f"file://{self.root}/"

    def _dir(self, backup_id: str) -> Path:
        return self.root / backup_id

    def writer(self, backup_id: str, name: str) -> Writer:
        self._dir(backup_id).mkdir(parents=True, exist_ok=True)
        return FileWriter(self._dir(backup_id) / name)

    def read(self, backup_id: str, name: str) -> Iterator[bytes]:
        path = self._dir(backup_id) / name
        if not path.is_file():
            raise IncompleteBackup(f"artifact {name} of backup {backup_id} is missing")
        with path.open("rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield chunk

    def put_manifest(self, manifest: Manifest) -> None:
        self._dir(manifest.id).mkdir(parents=True, exist_ok=True)
        writer = FileWriter(self._dir(manifest.id) / MANIFEST_NAME)
        writer.write(manifest.model_dump_json(indent=2).encode())
        writer.complete()

    def get_manifest(self, backup_id: str) -> Manifest | None:
        path = self._dir(backup_id) / MANIFEST_NAME
        if not path.is_file():
            return None
        return parse_manifest(path.read_bytes(), str(path))

    def abort_incomplete(self, backup_id: str) -> int:
        leftovers = list(self._dir(backup_id).glob(f"*{PARTIAL}")) if self._dir(backup_id).is_dir() else []
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def delete(self, backup_id: str) -> None:
        (self._dir(backup_id) / MANIFEST_NAME).unlink(missing_ok=True)
        shutil.rmtree(self._dir(backup_id), ignore_errors=True)


def open_store(target: BackupTarget) -> Store:
    """The store for a request's target (exactly one is set; the model guarantees it)."""
    if target.s3 is not None:
        # Imported here: s3.py builds on this module, and only S3 targets need boto3 loaded.
        from kubetrove.agent.backup.s3 import S3Store

        return S3Store(target.s3)
    assert target.directory is not None
    return DirectoryStore(target.directory)
