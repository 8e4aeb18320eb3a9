"""The storage target Protocol (``Store``, ``Writer``) and what every target shares; each target is its own
module (``directory.py``: a PVC, ``s3.py``: S3-compatible object storage), chosen by ``targets.open_store``.

A store raises only ``StorageError`` (and ``OSError`` from the local disk): a target's client library
errors (botocore's) are wrapped inside the store, so no caller knows which library a target uses.

Writers compute the SHA-256 and size while the bytes stream through; nothing is spooled locally. The
SHA-256 is kept in the manifest and verified before any restore touches a target (end-to-end
integrity); each hop may add its own check (the S3 writer's per-part CRC32). An artifact becomes
visible only when complete (an S3 multipart upload is completed, a ``.partial`` file renamed);
``abort()`` and ``abort_incomplete`` remove what a failed or killed run left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Protocol

import pydantic

from kubetrove.agent.backup.manifest import Artifact, Manifest

MiB = 1024 * 1024
READ_CHUNK = 4 * MiB
Bytes = bytes | bytearray | memoryview  # what hashlib, zlib and os.write take without a copy
Seen = Callable[[memoryview], None]  # told about every chunk read from the tool (valid during the call)


class StorageError(Exception):
    """The target refused or failed an operation."""


class IncompleteBackup(StorageError):
    """A manifest exists but cannot be read: treated exactly like a missing one."""


class InvalidManifest(IncompleteBackup):
    """A manifest that parses but breaks the rules (an artifact name that is a path, another backup's
    id): copied or forged by whoever can write the store. Refused like a missing one, and said so."""


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


def parse_manifest(raw: bytes, where: str, backup_id: str) -> Manifest:
    """Backup ``backup_id``'s manifest in ``raw`` (read from ``where``). IncompleteBackup when it is not
    JSON (a torn write), InvalidManifest when it breaks the manifest's rules or is another backup's."""
    try:
        manifest = Manifest.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        if any(error["type"] == "json_invalid" for error in errors):
            raise IncompleteBackup(
                f"unreadable manifest at {where}: {exc.error_count()} problem(s)"
            ) from None
        # Where and what, never the offending value (a forged manifest chooses it: it stays out of logs).
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in errors[:3]
        )
        raise InvalidManifest(f"invalid manifest at {where}: {problems}") from None
    if manifest.id != backup_id:
        raise InvalidManifest(
            f"the manifest at {where} is of backup {manifest.id}, not {backup_id} (copied or forged)"
        )
    return manifest
