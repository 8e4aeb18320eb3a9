"""Storage targets behind one small Protocol: S3-compatible object storage (boto3) and a directory (a PVC).

Writers compute the SHA-256 and size while the bytes stream through; nothing is spooled locally.
S3 uploads are multipart: parts are uploaded by a small thread pool while the next part fills, so the
tool is never blocked for long (memory is bounded to ``part_size * (workers + 1)``). ``abort()`` removes
every uploaded part, so a failed or killed backup leaves no object behind; a part upload that the agent
could not abort (SIGKILL) is invisible to listings and is aborted by ``abort_incomplete`` on the next try.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import boto3
import botocore.config
import botocore.exceptions
import pydantic

from kubetrove.agent.backup.manifest import MANIFEST_NAME, Artifact, Manifest, artifact_key
from kubetrove.agent.protocol import BackupTarget, DirectoryTarget, S3Target

MiB = 1024 * 1024
READ_CHUNK = 4 * MiB


class StorageError(Exception):
    """The target refused or failed an operation."""


class IncompleteBackup(StorageError):
    """A manifest exists but cannot be read: treated exactly like a missing one."""


class Writer(Protocol):
    """One artifact being written: ``write`` many times, then exactly one of ``complete`` or ``abort``."""

    def write(self, data: bytes) -> None:
        """Append bytes (may block while earlier parts upload)."""
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


class _Digest:
    """Size and SHA-256 of the bytes seen so far."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)

    def artifact(self, name: str) -> Artifact:
        return Artifact(name=name, size=self.size, sha256=self.sha.hexdigest())


def _parse_manifest(raw: bytes, where: str) -> Manifest:
    try:
        return Manifest.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise IncompleteBackup(f"unreadable manifest at {where}: {exc.error_count()} problem(s)") from None


# -- S3 -------------------------------------------------------------------------------------------


def s3_client(target: S3Target) -> Any:
    """A boto3 S3 client for ``target`` (path-style addressing: what S3-compatible servers expect)."""
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.access_key_id,
        aws_secret_access_key=target.secret_access_key,
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=16,
            # botocore would otherwise CRC32 every part in Python: the SHA-256 computed while streaming
            # and kept in the manifest is the end-to-end check, and TLS/TCP protect the transfer.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


class S3Writer:
    """A multipart upload fed from a stream; parts go up in parallel, in order of their numbers."""

    def __init__(self, client: Any, bucket: str, key: str, part_size: int, workers: int) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._part_size = part_size
        self._digest = _Digest()
        self._chunks: list[bytes] = []  # joined once per part: one copy of the data, not two
        self._buffered = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-part")
        self._slots = threading.BoundedSemaphore(workers + 1)
        self._parts: list[Future[dict[str, Any]]] = []
        self._upload_id: str = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered >= self._part_size:
            joined = b"".join(self._chunks)
            cut = len(joined) - len(joined) % self._part_size
            for start in range(0, cut, self._part_size):
                self._submit(joined[start : start + self._part_size])
            self._chunks = [joined[cut:]] if cut < len(joined) else []
            self._buffered = len(joined) - cut

    def _submit(self, body: bytes) -> None:
        self._slots.acquire()  # back-pressure: at most workers+1 parts in memory
        number = len(self._parts) + 1
        future = self._pool.submit(self._upload, number, body)
        future.add_done_callback(lambda _f: self._slots.release())
        self._parts.append(future)

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        reply = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": reply["ETag"]}

    def complete(self) -> Artifact:
        try:
            # S3 needs at least one part; an empty stream uploads one empty part (allowed as the last one).
            if self._buffered or not self._parts:
                self._submit(b"".join(self._chunks))
                self._chunks, self._buffered = [], 0
            parts = [f.result() for f in self._parts]
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self.abort()
            raise
        finally:
            self._pool.shutdown(wait=True)
        return self._digest.artifact(self._key.rsplit("/", 1)[-1])

    def abort(self) -> None:
        for future in self._parts:
            future.cancel()
        self._pool.shutdown(wait=True)
        # On failure the next attempt's abort_incomplete removes it.
        with contextlib.suppress(botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)


class S3Store:
    """Backups under ``s3://bucket/prefix/<id>/``."""

    def __init__(self, target: S3Target, part_size: int = 32 * MiB, workers: int = 3) -> None:
        self.target = target
        self.client = s3_client(target)
        self.part_size, self.workers = part_size, workers
        self.location = f"s3://{target.bucket}/{artifact_key(target.prefix, '', '')}".rstrip("/") + "/"

    def _key(self, backup_id: str, name: str) -> str:
        return artifact_key(self.target.prefix, backup_id, name)

    def writer(self, backup_id: str, name: str) -> Writer:
        return S3Writer(
            self.client, self.target.bucket, self._key(backup_id, name), self.part_size, self.workers
        )

    def read(self, backup_id: str, name: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.target.bucket, Key=self._key(backup_id, name))["Body"]
        except self.client.exceptions.NoSuchKey:
            raise IncompleteBackup(f"artifact {name} of backup {backup_id} is missing") from None
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def put_manifest(self, manifest: Manifest) -> None:
        body = manifest.model_dump_json(indent=2).encode()
        key = self._key(manifest.id, MANIFEST_NAME)
        self.client.put_object(Bucket=self.target.bucket, Key=key, Body=body, ContentType="application/json")

    def get_manifest(self, backup_id: str) -> Manifest | None:
        key = self._key(backup_id, MANIFEST_NAME)
        try:
            raw = self.client.get_object(Bucket=self.target.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return _parse_manifest(raw, f"s3://{self.target.bucket}/{key}")

    def abort_incomplete(self, backup_id: str) -> int:
        prefix = self._key(backup_id, "")
        # MinIO only honours a Prefix equal to a whole key (AWS takes any prefix), so list the bucket's
        # in-progress uploads and filter here: there are few, and only a crashed run leaves any.
        found: dict[tuple[str, str], None] = {}
        for list_prefix in (prefix, ""):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.target.bucket, Prefix=list_prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Key"].startswith(prefix):
                        found[(upload["Key"], upload["UploadId"])] = None
        for key, upload_id in found:
            self.client.abort_multipart_upload(Bucket=self.target.bucket, Key=key, UploadId=upload_id)
        return len(found)

    def delete(self, backup_id: str) -> None:
        bucket = self.target.bucket
        self.client.delete_object(Bucket=bucket, Key=self._key(backup_id, MANIFEST_NAME))
        listed = self.client.list_objects_v2(Bucket=bucket, Prefix=self._key(backup_id, ""))
        for obj in listed.get("Contents", []):
            self.client.delete_object(Bucket=bucket, Key=obj["Key"])
        self.abort_incomplete(backup_id)


# -- a directory (PVC) ---------------------------------------------------------------------------------

PARTIAL = ".partial"


class FileWriter:
    """Writes ``<name>.partial``; ``complete`` fsyncs and renames it to ``<name>``: atomic."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._partial = path.with_name(path.name + PARTIAL)
        self._file = self._partial.open("wb")
        self._digest = _Digest()

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self._file.write(data)

    def complete(self) -> Artifact:
        self._file.flush()
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
        return _parse_manifest(path.read_bytes(), str(path))

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
        return S3Store(target.s3)
    assert target.directory is not None
    return DirectoryStore(target.directory)
