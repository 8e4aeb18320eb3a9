"""``open_store``: the store of a request's target, the one place that knows every target module."""

from __future__ import annotations

from kubetrove.agent.backup.directory import DirectoryStore
from kubetrove.agent.backup.storage import Store
from kubetrove.agent.protocol import BackupTarget


def open_store(target: BackupTarget) -> Store:
    """The store for a request's target (exactly one is set; the model guarantees it).

    StorageError when the target cannot be reached or set up (an S3 client's configuration is refused).
    """
    if target.s3 is not None:
        # Imported here: only S3 targets need boto3 loaded.
        from kubetrove.agent.backup.s3 import S3Store

        return S3Store(target.s3)
    assert target.directory is not None
    return DirectoryStore(target.directory)
