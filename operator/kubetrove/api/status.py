"""Status of every kind: phase, conditions, endpoints; members for clusters; backup results."""

from __future__ import annotations

import enum

from pydantic import Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import LIST_SET, Condition, Endpoints, list_map


class Phase(enum.StrEnum):
    """Summary of the resource's state; conditions hold the details."""

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
    USERS_READY = "UsersReady"  # spec.databases and spec.users applied through the agent
    RESTORED = "Restored"  # spec.restoreFrom: the restore init containers' outcome
    TLS_READY = "TLSReady"  # spec.tls: what the engine serves, the certificate's expiry
    SCALE_DOWN = "ScaleDown"  # a ring's last scale-down: its nodes decommissioned, or why not


class MemberRole(enum.StrEnum):
    """Role of a member as its agent reports it."""

    PRIMARY = "primary"
    REPLICA = "replica"
    MEMBER = "member"  # engines without a primary (Cassandra) or where the role is unknown yet
    UNKNOWN = "unknown"


class MemberStatus(ApiModel):
    """One member (pod) of a cluster as last observed."""

    pod: str = Field(description="Pod name.")
    role: MemberRole = Field(default=MemberRole.UNKNOWN, description="primary, replica, member or unknown.")
    position: str | None = Field(
        default=None, description="Replication position: GTID set, MariaDB GTID position, LSN, optime..."
    )
    lag_seconds: float | None = Field(default=None, description="Replication lag behind the primary.")
    healthy: bool = Field(default=False, description="Engine up and replicating as its role requires.")
    # A ring (Cassandra): this member's node as the other nodes see it (``nodetool status``).
    ring_state: str | None = Field(
        default=None,
        description="Ring nodes only: UN, DN, UJ, UL... as nodetool status prints it (Up/Down, "
        "Normal/Joining/Leaving/Moving), as the other nodes see this one.",
    )
    host_id: str | None = Field(default=None, description="Ring nodes only: the node's host id.")
    address: str | None = Field(
        default=None,
        description="Ring nodes only: the node's address in the ring (what a replacement node names in "
        "replace_address_first_boot when this one is dead).",
    )
    tokens: int | None = Field(default=None, ge=0, description="Ring nodes only: how many tokens it owns.")
    load: str | None = Field(default=None, description='Ring nodes only: data on disk, e.g. "1.2 MiB".')
    # The data volume's filesystem as the member's agent measures it (statvfs of the data directory).
    volume_used_bytes: int | None = Field(
        default=None, ge=0, description="Bytes used on the member's data volume (df's Used)."
    )
    volume_available_bytes: int | None = Field(
        default=None,
        ge=0,
        description="Bytes the engine can still write there (df's Avail; root's reserve excluded).",
    )
    volume_capacity_bytes: int | None = Field(
        default=None, ge=0, description="Size of the data volume's filesystem in bytes."
    )


class MemberRebuild(ApiModel):
    """The last automatic rebuild of one member (docs/clustering.md, I7): what it discarded, and from whom."""

    pod: str = Field(description="The member that was re-provisioned.")
    source: str = Field(description="The primary it was re-provisioned from.")
    discarded: str = Field(
        default="",
        description="The transactions only this member held, discarded by the rebuild (MySQL: a GTID set); "
        "empty when it held none.",
    )
    time: str = Field(description="When the rebuild started (RFC 3339).")


class RecoveryTiming(ApiModel):
    """The restore verification that ended last (spec.backup.verify): restore time and the data's age."""

    backup: str = Field(default="", description="The DatabaseBackup that was restored.")
    verified: bool = Field(default=False, description="True when the verification succeeded.")
    completed_at: str | None = Field(default=None, description="RFC 3339 time the verification ended.")
    restore_seconds: float | None = Field(
        default=None, ge=0, description="Measured restore time (RTO), seconds, when the restore finished."
    )
    backup_age_seconds: float | None = Field(
        default=None, ge=0, description="Age of the backup when the verification ended (RPO), seconds."
    )
    max_restore_seconds: int | None = Field(
        default=None,
        ge=1,
        description="The target restore time in force (spec.backup.verifyMaxRestoreSeconds).",
    )


class StorageGrowth(ApiModel):
    """The last automatic growth of the data volumes (spec.storage.autogrow)."""

    from_size: str = Field(default="", alias="from", description="The volumes' size before the growth.")
    to_size: str = Field(default="", alias="to", description="The size they were grown to.")
    time: str = Field(default="", description="When the growth was requested (RFC 3339).")
    member: str = Field(default="", description="The member whose volume crossed the threshold.")
    reason: str = Field(default="", description="Why: the member's fill against the threshold.")
    full: list[str] = Field(
        default_factory=list,
        description="Every member at or over the threshold when the growth was decided.",
        json_schema_extra=LIST_SET,
    )
    restarted: list[str] = Field(
        default_factory=list,
        description="Members whose pod was deleted after this growth completed because their engine was "
        "not running (an engine stopped on a full disk starts again on the larger volume); once each.",
        json_schema_extra=LIST_SET,
    )


class StorageStatus(ApiModel):
    """What the operator grew the data volumes to (spec.storage.autogrow); owned by the operator."""

    size: str | None = Field(
        default=None,
        description="The size autogrow decided on; the volumes are max(spec.storage.size, this). Never "
        "written back to the spec.",
    )
    last_growth: StorageGrowth | None = Field(default=None, description="The last automatic growth.")


# Conditions are unique by type, members by pod (as metav1.Condition lists are in Kubernetes' own APIs).
CONDITIONS_DOC = "Ready, Progressing, Degraded, Failed: one per type, each with reason and message."


class ResourceStatus(ApiModel):
    """Status of DatabaseInstance and DatabaseCluster."""

    phase: Phase = Field(
        default=Phase.PENDING,
        description="Pending, Provisioning, Ready, Updating, Degraded, Failed or Deleting.",
    )
    conditions: list[Condition] = Field(
        default_factory=list, description=CONDITIONS_DOC, json_schema_extra=list_map("type")
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the operator last acted on."
    )
    endpoints: Endpoints | None = Field(default=None, description="Where clients connect.")
    credentials_secret: str | None = Field(
        default=None, description="Secret with the generated credentials (admin and users without a Secret)."
    )
    version: str | None = Field(default=None, description="Engine version currently rolled out.")
    primary: str | None = Field(
        default=None, description="The pod that is primary: the single source of truth used for routing."
    )
    members: list[MemberStatus] = Field(
        default_factory=list, description="Every member, as observed.", json_schema_extra=list_map("pod")
    )
    errant_members: list[str] = Field(
        default_factory=list,
        description="Members holding transactions the primary does not have (errant GTIDs); "
        "never promoted automatically.",
        json_schema_extra=LIST_SET,
    )
    rebuilds: list[MemberRebuild] = Field(
        default_factory=list,
        description="The last automatic rebuild of each member that had one (spec.failover.rebuildErrant): "
        "the transactions it discarded.",
        json_schema_extra=list_map("pod"),
    )
    storage: StorageStatus | None = Field(
        default=None,
        description="Automatic growth of the data volumes (spec.storage.autogrow): the size decided on and "
        "the last growth.",
    )
    recovery: RecoveryTiming | None = Field(
        default=None,
        description="Measured recovery of the restore verification that ended last (spec.backup.verify): "
        "restore time (RTO) and backup age (RPO).",
    )
