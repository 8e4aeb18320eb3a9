"""The directory target: backups under ``<path>/<id>/`` on a volume (a PVC mounted into the agent).

An artifact is written as ``<name>.partial``, fsynced and renamed: visible only when complete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from kubetrove.agent.backup.manifest import MANIFEST_NAME, Artifact, Manifest
from kubetrove.agent.backup.storage import (
    READ_CHUNK,
    Bytes,
    Digest,
    IncompleteBackup,
    InvalidManifest,
    MiB,
    Seen,
    Writer,
    parse_manifest,
)
from kubetrove.agent.protocol import DirectoryTarget

FILE_BUFFER = 4 * MiB  # the directory writer's one reused read buffer
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
        if path.parent != self._dir(backup_id):  # the manifest's pattern refuses it first; second fence
            raise InvalidManifest(f"artifact name {name!r} of backup {backup_id} is not a plain file name")
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
        return parse_manifest(path.read_bytes(), str(path), backup_id)

    def abort_incomplete(self, backup_id: str) -> int:
        leftovers = list(self._dir(backup_id).glob(f"*{PARTIAL}")) if self._dir(backup_id).is_dir() else []
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def delete(self, backup_id: str) -> None:
        (self._dir(backup_id) / MANIFEST_NAME).unlink(missing_ok=True)
        shutil.rmtree(self._dir(backup_id), ignore_errors=True)
