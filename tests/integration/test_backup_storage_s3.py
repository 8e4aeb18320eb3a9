"""The S3 store against a real MinIO: multipart streaming, read back, abort, leftovers of a crashed writer."""

from __future__ import annotations

import hashlib
import os

from kubetrove.agent.backup.storage import MiB, S3Store
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
