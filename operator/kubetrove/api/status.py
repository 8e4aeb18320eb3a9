"""Status of every kind: phase, conditions, endpoints; members for clusters; backup results."""

from __future__ import annotations

import enum

from pydantic import Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import Condition, Endpoints


class Phase(enum.StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    READY = "Ready"
    UPDATING = "Updating"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    DELETING = "Deleting"


class ConditionType(enum.StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    BACKUP_VERIFIED = "BackupVerified"


class MemberRole(enum.StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"
    MEMBER = "member"  # engines without a primary (Cassandra) or where the role is unknown yet
    UNKNOWN = "unknown"


class MemberStatus(ApiModel):
    pod: str
    role: MemberRole = MemberRole.UNKNOWN
    position: str | None = None  # GTID set, MariaDB GTID position, LSN, optime...
    lag_seconds: float | None = None
    healthy: bool = False


class ResourceStatus(ApiModel):
    """Status of DatabaseInstance and DatabaseCluster."""

    phase: Phase = Phase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    endpoints: Endpoints | None = None
    credentials_secret: str | None = None
    version: str | None = None  # the engine version currently rolled out
    primary: str | None = None
    members: list[MemberStatus] = Field(default_factory=list)
    errant_members: list[str] = Field(default_factory=list)
