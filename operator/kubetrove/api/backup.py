"""DatabaseBackup: one backup of an instance or cluster to a storage target."""

from __future__ import annotations

import enum

from pydantic import Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import Condition, DeletionPolicy, DnsLabel
from kubetrove.api.policies import BackupMethod, BackupStorage


class SourceKind(enum.StrEnum):
    INSTANCE = "DatabaseInstance"
    CLUSTER = "DatabaseCluster"


class BackupSource(ApiModel):
    kind: SourceKind
    name: DnsLabel


class BackupSpec(ApiModel):
    source: BackupSource
    method: BackupMethod = BackupMethod.AUTO
    storage: BackupStorage | None = None  # defaults to the source's spec.backup.storage
    deletion_policy: DeletionPolicy = DeletionPolicy.RETAIN  # Delete removes the stored objects too


class BackupPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class BackupStatus(ApiModel):
    phase: BackupPhase = BackupPhase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    engine: str | None = None
    engine_version: str | None = None
    method: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    position: str | None = None
    location: str | None = None
    throughput_mib_per_s: float | None = None
    error: str | None = None
