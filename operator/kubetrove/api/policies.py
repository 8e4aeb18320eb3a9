"""Failover, backup and restore policies, shared by DatabaseInstance and DatabaseCluster."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from kubetrove.api.base import ApiModel
from kubetrove.api.common import DeletionPolicy, DnsLabel, cel


class FailoverPolicy(ApiModel):
    """Automatic failover for primary/replica topologies (ignored where the engine has no primary)."""

    automatic: bool = Field(
        default=True, description="Promote the most advanced healthy replica when the primary fails."
    )
    # How long the primary must be unreachable (or its engine down) before a failover starts.
    detection_seconds: Annotated[int, Field(ge=1, le=300)] = Field(
        default=5, description="How long the primary must be unreachable before a failover starts."
    )
    # docs/clustering.md, I7: only engines that can re-provision a member from the primary (MySQL's clone).
    rebuild_errant: bool = Field(
        default=True,
        description="Re-provision a quarantined member holding transactions the primary lacks (errant) from "
        "the primary, discarding them (named in status.rebuilds and an Event), where the engine can "
        "(MySQL: the clone plugin). False: it stays quarantined for inspection.",
    )


class BackupMethod(enum.StrEnum):
    """How a backup is taken."""

    AUTO = "auto"  # the engine's preferred method (physical where the engine has one)
    LOGICAL = "logical"
    PHYSICAL = "physical"


_METHOD = "auto (the engine's preferred method, physical where it has one), logical (a dump) or physical."


class S3Storage(ApiModel):
    """An S3-compatible bucket."""

    bucket: str = Field(min_length=1, description="Bucket name.")
    prefix: str = Field(default="", description="Key prefix inside the bucket.")
    endpoint: str | None = Field(
        default=None, description="Endpoint URL of an S3-compatible server; AWS S3 when absent."
    )
    region: str = Field(default="us-east-1", description="Region of the bucket.")
    # Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    credentials_secret_ref: DnsLabel = Field(
        description="Secret (same namespace) with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
    )


class PvcStorage(ApiModel):
    """A PersistentVolumeClaim in the resource's namespace."""

    claim_name: DnsLabel = Field(description="Name of an existing PersistentVolumeClaim.")


class BackupStorage(ApiModel):
    """Exactly one target: S3-compatible object storage, or a PVC."""

    # Same rule in the CRD (CEL, checked by the API server) and in the model (checked when parsed).
    model_config = ConfigDict(
        json_schema_extra=cel("has(self.s3) != has(self.pvc)", "set exactly one of s3 or pvc")
    )

    s3: S3Storage | None = Field(default=None, description="S3-compatible object storage.")
    pvc: PvcStorage | None = Field(default=None, description="A PersistentVolumeClaim.")

    @model_validator(mode="after")
    def _exactly_one(self) -> BackupStorage:
        if (self.s3 is None) == (self.pvc is None):
            raise ValueError("set exactly one of s3 or pvc")
        return self


class BackupPolicy(ApiModel):
    """Scheduled backups of this instance or cluster."""

    # Same rule in the CRD (CEL) and in the model: a restore-time target only means something when
    # restores are verified (and timed).
    model_config = ConfigDict(
        json_schema_extra=cel(
            "!has(self.verifyMaxRestoreSeconds) || (has(self.verify) && self.verify)",
            "verifyMaxRestoreSeconds needs verify: true",
        )
    )

    schedule: str | None = Field(
        default=None,
        description='Cron expression (5 fields, e.g. "0 3 * * *"); no scheduled backups when absent.',
    )
    keep: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=7, description="How many completed scheduled backups to keep; older ones are deleted."
    )
    method: BackupMethod = Field(default=BackupMethod.AUTO, description=_METHOD)
    storage: BackupStorage | None = Field(default=None, description="Where backups are written.")
    verify: bool = Field(
        default=False, description="Restore each backup into a scratch instance to prove it can be restored."
    )
    # docs/backup-verification.md, "Recovery time": the measured restore is the RTO a real restore of
    # this backup would have; over the target, the verification fails (RestoreTooSlow).
    verify_max_restore_seconds: Annotated[int, Field(ge=1, le=86400)] | None = Field(
        default=None,
        description="Target restore time (RTO) in seconds: a verification whose restore takes longer "
        "(from its start to the scratch instance Ready) fails with reason RestoreTooSlow. "
        "Needs verify: true.",
    )

    @model_validator(mode="after")
    def _target_needs_verify(self) -> BackupPolicy:
        if self.verify_max_restore_seconds is not None and not self.verify:
            raise ValueError("verifyMaxRestoreSeconds needs verify: true")
        return self


class RestoreFrom(ApiModel):
    """Create the new instance/cluster from a completed DatabaseBackup in the same namespace."""

    model_config = ConfigDict(
        json_schema_extra=cel("self == oldSelf", "restoreFrom is immutable: it only applies at creation")
    )

    backup: DnsLabel = Field(description="Name of a completed DatabaseBackup in the same namespace.")


class DeletionPolicies(ApiModel):
    """What deleting the resource does to its data."""

    volumes: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain keeps the PersistentVolumeClaims; Delete removes them.",
    )
    backups: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="Retain keeps this resource's DatabaseBackups; Delete removes them and the stored data.",
    )
