"""Failover, backup and restore policies, shared by DatabaseInstance and DatabaseCluster."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import DeletionPolicy, DnsLabel


class FailoverPolicy(ApiModel):
    """Automatic failover for primary/replica topologies (ignored where the engine elects or has no primary)."""

    automatic: bool = True
    # How long the primary must be unreachable (or its engine down) before a failover starts.
    detection_seconds: Annotated[int, Field(ge=1, le=300)] = 5


class BackupMethod(enum.StrEnum):
    AUTO = "auto"  # the engine's preferred method (physical where the engine has one)
    LOGICAL = "logical"
    PHYSICAL = "physical"


class S3Storage(ApiModel):
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    # Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    credentials_secret_ref: DnsLabel


class PvcStorage(ApiModel):
    claim_name: DnsLabel


class BackupStorage(ApiModel):
    """Exactly one target: S3-compatible object storage, or a PVC."""

    s3: S3Storage | None = None
    pvc: PvcStorage | None = None


class BackupPolicy(ApiModel):
    schedule: str | None = None  # cron expression, validated by the operator
    keep: Annotated[int, Field(ge=1, le=1000)] = 7
    method: BackupMethod = BackupMethod.AUTO
    storage: BackupStorage | None = None
    verify: bool = False


class RestoreFrom(ApiModel):
    """Create the new instance/cluster from a completed DatabaseBackup in the same namespace."""

    backup: DnsLabel


class DeletionPolicies(ApiModel):
    volumes: DeletionPolicy = DeletionPolicy.RETAIN
    backups: DeletionPolicy = DeletionPolicy.RETAIN
