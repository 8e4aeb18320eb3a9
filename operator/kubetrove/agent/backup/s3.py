"""The S3-compatible target (boto3): a multipart upload fed from the tool's pipe, and the backups' keys.

The tool's pipe is read straight into one of ``workers + 1`` reused part buffers (no per-chunk
allocation, no join/slice copies), and full parts are uploaded by a small thread pool while the next
part fills, so the tool is never blocked for long (memory is bounded to ``part_size * (workers + 1)``).
``abort()`` removes every uploaded part, so a failed or killed backup leaves no object behind; a part
upload that the agent could not abort (SIGKILL) is invisible to listings and is aborted by
``abort_incomplete`` on the next try. https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html

Integrity in transit: each part carries a CRC32 (``x-amz-checksum-crc32``, computed here with zlib,
checked by the server before it stores the part:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html), so the request
body is not SHA-256-signed as well (``payload_signing_enabled=False``: over plain HTTP that was a second
SHA-256 pass here and one more in the server, for what the CRC32 already checks).

Errors: botocore's exceptions never leave this module; every store and writer operation turns them into
``StorageError`` with botocore's message (``storage_errors``), which the routes answer with 502.
"""

from __future__ import annotations

import base64
import contextlib
import os
import queue
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from kubetrove.agent.backup.manifest import MANIFEST_NAME, Artifact, Manifest, artifact_key
from kubetrove.agent.backup.storage import (
    READ_CHUNK,
    Bytes,
    Digest,
    IncompleteBackup,
    MiB,
    Seen,
    StorageError,
    Writer,
    parse_manifest,
)
from kubetrove.agent.protocol import S3Target


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn botocore's errors into StorageError (same message): callers know only the Store contract."""
    try:
        yield
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise StorageError(str(exc)) from exc


def s3_client(target: S3Target) -> Any:
    """A boto3 S3 client for ``target`` (path-style addressing: what S3-compatible servers expect)."""
    return boto3.client(
        "s3",
        endpoint_url=target.endpoint,
        region_name=target.region,
        aws_access_key_id=target.access_key_id,
        aws_secret_access_key=target.secret_access_key,
        config=botocore.config.Config(
            # Every upload here carries its own CRC32 (see the module docstring), so the SigV4 signature
            # need not cover the body too: over plain HTTP botocore would SHA-256 every part for it.
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=16,
            # No default checksums: botocore would wrap each part in an aws-chunked trailer (a copy and a
            # Python loop per part over HTTPS); the writers pass their CRC32 themselves.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def crc32_b64(data: Bytes) -> str:
    """The base64 big-endian CRC32 that ``x-amz-checksum-crc32`` carries."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


class S3Writer:
    """A multipart upload fed from a stream; parts go up in parallel, in order of their numbers.

    Invariants: a buffer is either the one filling (main thread) or owned by exactly one part upload,
    which hands it back when it ends (done, failed or cancelled); at most ``workers + 1`` exist.
    """

    def __init__(self, client: Any, bucket: str, key: str, part_size: int, workers: int) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._part_size = part_size
        self._digest = Digest()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-part")
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._spare = workers + 1  # buffers not allocated yet: a small artifact touches only one
        self._buf, self._filled = self._take(), 0
        self._parts: list[Future[dict[str, Any]]] = []
        self._failed: BaseException | None = None
        with storage_errors():
            self._upload_id: str = client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32"
            )["UploadId"]

    def _take(self) -> bytearray:
        if self._spare:
            self._spare -= 1
            return bytearray(self._part_size)  # calloc: pages are only touched when filled
        return self._free.get()  # back-pressure: wait until a part upload hands its buffer back

    def write(self, data: Bytes) -> None:
        view = memoryview(data).cast("B")
        while view:
            n = min(len(view), self._part_size - self._filled)
            self._buf[self._filled : self._filled + n] = view[:n]
            self._digest.update(view[:n])
            self._advance(n)
            view = view[n:]

    def write_from(self, fd: int, seen: Seen) -> None:
        while True:
            with memoryview(self._buf) as space:
                n = os.readv(fd, [space[self._filled :]])  # the kernel copies straight into the part
                if n == 0:
                    return
                chunk = space[self._filled : self._filled + n]
                self._digest.update(chunk)
                seen(chunk)
                chunk.release()
            self._advance(n)

    def _advance(self, n: int) -> None:
        self._filled += n
        if self._filled == self._part_size:
            self._submit(self._buf)
            self._buf, self._filled = self._take(), 0

    def _submit(self, body: bytearray | bytes) -> None:
        if self._failed is not None:  # stop reading early: the upload is lost anyway
            raise StorageError(f"part upload failed: {self._failed}") from self._failed
        number = len(self._parts) + 1
        future = self._pool.submit(self._upload, number, body)
        future.add_done_callback(lambda f: self._part_done(f, body))  # also runs when cancelled
        self._parts.append(future)

    def _part_done(self, future: Future[dict[str, Any]], body: bytearray | bytes) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._failed = future.exception()  # set BEFORE the buffer wakes the reader up
        if isinstance(body, bytearray):
            self._free.put(body)

    def _upload(self, number: int, body: bytearray | bytes) -> dict[str, Any]:
        crc = crc32_b64(body)
        reply = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumCRC32=crc,
        )
        return {"PartNumber": number, "ETag": reply["ETag"], "ChecksumCRC32": crc}

    def complete(self) -> Artifact:
        try:
            # S3 needs at least one part; an empty stream uploads one empty part (allowed as the last one).
            if self._filled or not self._parts:
                self._submit(bytes(memoryview(self._buf)[: self._filled]))  # the last part: one copy
                self._filled = 0
            with storage_errors():
                parts = [f.result() for f in self._parts]
                self._client.complete_multipart_upload(
                    Bucket=self._bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": parts},
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
        with storage_errors():
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
        with storage_errors():
            try:
                body = self.client.get_object(Bucket=self.target.bucket, Key=self._key(backup_id, name))[
                    "Body"
                ]
            except self.client.exceptions.NoSuchKey:
                raise IncompleteBackup(f"artifact {name} of backup {backup_id} is missing") from None
            try:
                yield from body.iter_chunks(READ_CHUNK)
            finally:
                body.close()

    def put_manifest(self, manifest: Manifest) -> None:
        body = manifest.model_dump_json(indent=2).encode()
        key = self._key(manifest.id, MANIFEST_NAME)
        with storage_errors():
            self.client.put_object(
                Bucket=self.target.bucket,
                Key=key,
                Body=body,
                ContentType="application/json",
                ChecksumCRC32=crc32_b64(body),  # the body is not signed (payload_signing_enabled=False)
            )

    def get_manifest(self, backup_id: str) -> Manifest | None:
        key = self._key(backup_id, MANIFEST_NAME)
        with storage_errors():
            try:
                raw = self.client.get_object(Bucket=self.target.bucket, Key=key)["Body"].read()
            except self.client.exceptions.NoSuchKey:
                return None
        return parse_manifest(raw, f"s3://{self.target.bucket}/{key}", backup_id)

    def abort_incomplete(self, backup_id: str) -> int:
        with storage_errors():
            return self._abort_incomplete(backup_id)

    def _abort_incomplete(self, backup_id: str) -> int:
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
        with storage_errors():
            self.client.delete_object(Bucket=bucket, Key=self._key(backup_id, MANIFEST_NAME))
            listed = self.client.list_objects_v2(Bucket=bucket, Prefix=self._key(backup_id, ""))
            for obj in listed.get("Contents", []):
                self.client.delete_object(Bucket=bucket, Key=obj["Key"])
        self.abort_incomplete(backup_id)
