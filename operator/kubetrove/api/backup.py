"""DatabaseBackup: one backup of an instance or cluster to a storage target."""

from __future__ import annotations

import enum

from pydantic import ConfigDict, Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import Condition, DeletionPolicy, DnsLabel, cel, list_map
from kubetrove.api.policies import BackupMethod, BackupStorage
from kubetrove.api.status import CONDITIONS_DOC

# The label on a DatabaseBackup created by a schedule (value: the source's name). Retention prunes by it,
# and DatabasePolicy counts such backups through spec.backup.keep rather than one by one.
SCHEDULED_BY = "kubetrove.io/scheduled-by"


class SourceKind(enum.StrEnum):
    """Kind of the resource a backup is taken from."""

    INSTANCE = "DatabaseInstance"
    CLUSTER = "DatabaseCluster"


class BackupSource(ApiModel):
    """The instance or cluster to back up, in the same namespace."""

    # A backup is one run against one source: pointing it elsewhere later would mislabel its data.
    model_config = ConfigDict(json_schema_extra=cel("self == oldSelf", "source is immutable"))

    kind: SourceKind = Field(description="DatabaseInstance or DatabaseCluster.")
    name: DnsLabel = Field(description="Name of the source resource.")


class BackupSpec(ApiModel):
    """One backup of a DatabaseInstance or DatabaseCluster."""

    source: BackupSource = Field(description="What to back up.")
    method: BackupMethod = Field(
        default=BackupMethod.AUTO,
        description="auto (the engine's preferred method), logical (a dump) or physical.",
    )
    storage: BackupStorage | None = Field(
        default=None, description="Where to write it; the source's spec.backup.storage when absent."
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain keeps the stored backup when this resource is deleted; Delete removes it too.",
    )


class BackupPhase(enum.StrEnum):
    """Progress of a backup."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class VerificationPhase(enum.StrEnum):
    """Progress of the restore verification of a completed backup (``spec.backup.verify``)."""

    RESTORING = "Restoring"
    CHECKING = "Checking"
    VERIFIED = "Verified"
    FAILED = "Failed"


class BackupVerification(ApiModel):
    """The restore verification of this backup: a throwaway instance restored from it, then checked."""

    # Defaults only because no status field may be required in the CRD; the operator always sets all three.
    phase: VerificationPhase = Field(
        default=VerificationPhase.RESTORING, description="Restoring, Checking, Verified or Failed."
    )
    instance: str = Field(
        default="",
        description="The throwaway DatabaseInstance the backup is restored into (a DatabaseCluster of as many"
        " nodes for a ring's backup).",
    )
    started_at: str | None = Field(default=None, description="RFC 3339 time the verification started.")
    completed_at: str | None = Field(default=None, description="RFC 3339 time it ended.")
    reason: str | None = Field(
        default=None,
        description="Why it failed: RestoreFailed, RestoreTimeout, RestoreTooSlow, CheckFailed, "
        "CountsDiffer, ChecksumDiffers, TableMissing or AgentError.",
    )
    message: str | None = Field(default=None, description="What was found, in words.")
    tables: int | None = Field(default=None, ge=0, description="Tables compared with the backup's stats.")
    restore_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Measured restore time (RTO): seconds from startedAt to the scratch instance Ready.",
    )
    backup_age_seconds: float | None = Field(
        default=None,
        ge=0,
        description="Age of the backup (since its completedAt) when the verification ended: the data a "
        "restore at that moment would have lost (RPO).",
    )
    max_restore_seconds: int | None = Field(
        default=None,
        ge=1,
        description="The target restore time in force (spec.backup.verifyMaxRestoreSeconds).",
    )


class NodeBackup(ApiModel):
    """One node's part of a ring backup (Cassandra): its own snapshot, stored under its own id."""

    pod: str = Field(description="The member the snapshot was taken on.")
    id: str = Field(description="The stored backup's id (its manifest names the node's host id and tokens).")
    phase: BackupPhase = Field(
        default=BackupPhase.PENDING, description="Pending, Running, Completed or Failed."
    )
    host_id: str | None = Field(default=None, description="The node's host id when the snapshot was taken.")
    address: str | None = Field(default=None, description="The node's address in the ring.")
    tokens: int | None = Field(default=None, ge=0, description="How many tokens the node owned.")
    size_bytes: int | None = Field(default=None, ge=0, description="Stored size in bytes.")
    sha256: str | None = Field(default=None, description="SHA-256 of the stored artifact.")
    location: str | None = Field(default=None, description="Where this node's snapshot is stored.")
    error: str | None = Field(default=None, description="Why this node's backup failed.")


class BackupStatus(ApiModel):
    """Progress and result of a backup."""

    phase: BackupPhase = Field(
        default=BackupPhase.PENDING, description="Pending, Running, Completed or Failed."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description=CONDITIONS_DOC, json_schema_extra=list_map("type")
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the operator last acted on."
    )
    engine: str | None = Field(default=None, description="Engine of the source.")
    engine_version: str | None = Field(default=None, description="Engine version the backup was taken from.")
    method: str | None = Field(
        default=None, description="Method actually used (e.g. xtrabackup, pg_basebackup)."
    )
    started_at: str | None = Field(default=None, description="RFC 3339 start time.")
    completed_at: str | None = Field(default=None, description="RFC 3339 completion time.")
    size_bytes: int | None = Field(default=None, ge=0, description="Stored size in bytes.")
    sha256: str | None = Field(default=None, description="SHA-256 of the stored artifact.")
    position: str | None = Field(
        default=None, description="Replication position the backup is consistent with (GTID set, LSN...)."
    )
    location: str | None = Field(default=None, description="Where the backup is stored (URL or path).")
    throughput_mib_per_s: float | None = Field(default=None, description="Average write throughput, MiB/s.")
    error: str | None = Field(default=None, description="Why the backup failed.")
    nodes: list[NodeBackup] = Field(
        default_factory=list,
        description="A ring's backup (Cassandra DatabaseCluster): one snapshot per node, in member order; "
        "a restore gives member i the snapshot of node i and its tokens.",
        json_schema_extra=list_map("pod"),
    )
    verification: BackupVerification | None = Field(
        default=None, description="Restore verification (the source's spec.backup.verify), when it ran."
    )
