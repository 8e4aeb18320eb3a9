"""The S3 store against a real MinIO: multipart streaming, read back, abort, leftovers of a crashed writer."""

from __future__ import annotations

import hashlib
import os
import threading

from kubetrove.agent.backup.s3 import S3Store
from kubetrove.agent.backup.storage import MiB
from tests.integration.conftest_backup import listed_keys
from tests.integration.servers.minio import MinioServer


def store(minio: MinioServer, prefix: str) -> S3Store:
    target = minio.target(prefix).s3
    assert target is not None
    return S3Store(target, part_size=5 * MiB, workers=2)  # 5 MiB: the smallest part S3 allows


def test_multipart_round_trip_with_odd_chunks(minio: MinioServer) -> None:
    s = store(minio, "s3-rt")
    data = os.urandom(13 * MiB + 12345)
    writer = s.writer("b1", "blob")
    for start in range(0, len(data), 777_777):  # chunks that never line up with parts
        writer.write(data[start : start + 777_777])
    artifact = writer.complete()
    assert artifact.size == len(data) and artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(s.read("b1", "blob")) == data


def test_abort_leaves_no_object_and_abort_incomplete_cleans_a_crashed_writer(minio: MinioServer) -> None:
    s = store(minio, "s3-abort")
    writer = s.writer("b1", "aborted")
    writer.write(os.urandom(6 * MiB))
    writer.abort()
    crashed = s.writer("b1", "crashed")  # never completed nor aborted: what a SIGKILLed agent leaves
    crashed.write(os.urandom(6 * MiB))
    assert listed_keys(minio, "s3-abort/") == []
    assert s.abort_incomplete("b1") == 1
    assert s.abort_incomplete("b1") == 0


def test_write_from_a_pipe_sends_crc32_checked_parts(minio: MinioServer) -> None:
    s = store(minio, "s3-pipe")
    data = os.urandom(11 * MiB + 4321)
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)

    feeder = threading.Thread(target=feed)
    feeder.start()
    seen: list[int] = []
    writer = s.writer("b1", "piped")
    writer.write_from(read_fd, lambda chunk: seen.append(len(chunk)))
    feeder.join()
    os.close(read_fd)
    artifact = writer.complete()
    assert sum(seen) == len(data) and artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(s.read("b1", "piped")) == data
    # Every part carried a CRC32 the server checked: the object reports a composite CRC32 of 3 parts.
    head = s.client.head_object(Bucket=s.target.bucket, Key="s3-pipe/b1/piped", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32", "").endswith("-3")
