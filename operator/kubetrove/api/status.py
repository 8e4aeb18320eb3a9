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
    tokens: int | None = Field(default=None, ge=0, description="Ring nodes only: how many tokens it owns.")
    load: str | None = Field(default=None, description='Ring nodes only: data on disk, e.g. "1.2 MiB".')


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
