"""The S3 store keeps botocore inside: every failure reaches callers as StorageError (the routes' 502)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from kubetrove.agent.backup.manifest import Artifact, Manifest
from kubetrove.agent.backup.s3 import S3Store
from kubetrove.agent.backup.storage import StorageError
from kubetrove.agent.protocol import BackupMethod, S3Target

TARGET = S3Target(endpoint="http://127.0.0.1:1", bucket="b", access_key_id="k", secret_access_key="s")


@pytest.fixture
def stubbed() -> Iterator[tuple[S3Store, Stubber]]:
    store = S3Store(TARGET)  # builds a client; connects to nothing
    with Stubber(store.client) as stubber:
        yield store, stubber


def test_a_refused_read_is_a_storage_error(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403)
    with pytest.raises(StorageError, match="AccessDenied") as caught:
        store.get_manifest("b1")
    assert type(caught.value) is StorageError  # the message is botocore's; the type is ours


def test_a_missing_manifest_is_none_not_an_error(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
    assert store.get_manifest("b1") is None


def test_failed_writes_and_deletes_are_storage_errors(stubbed: tuple[S3Store, Stubber]) -> None:
    store, stubber = stubbed
    manifest = Manifest(
        id="b1",
        engine="mariadb",
        engine_version="11.4.2",
        major="11.4",
        method=BackupMethod.LOGICAL,
        tool="mariadb-dump",
        artifacts=[Artifact(name="backup.sql", size=1, sha256="0" * 64)],
        created_at="2026-01-01T00:00:00Z",
    )
    stubber.add_client_error("put_object", "NoSuchBucket", "The specified bucket does not exist", 404)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        store.put_manifest(manifest)
    stubber.add_client_error("delete_object", "AccessDenied", "Access Denied", 403)
    with pytest.raises(StorageError, match="AccessDenied"):
        store.delete("b1")
    stubber.add_client_error("create_multipart_upload", "SlowDown", "Please reduce your request rate", 503)
    with pytest.raises(StorageError, match="SlowDown"):
        store.writer("b1", "backup.sql")
    stubber.add_client_error("get_object", "InternalError", "We encountered an internal error", 500)
    with pytest.raises(StorageError, match="InternalError"):
        list(store.read("b1", "backup.sql"))
