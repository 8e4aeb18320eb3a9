"""Specs of DatabaseInstance and DatabaseCluster: the same shape for every engine."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import (
    Database,
    DatastoreRef,
    DnsLabel,
    Resources,
    Storage,
    TLSMode,
    TLSSpec,
    User,
    list_map,
)
from kubetrove.api.policies import BackupPolicy, DeletionPolicies, FailoverPolicy, RestoreFrom


class InstanceSpec(ApiModel):
    """A standalone database server (one pod)."""

    datastore: DatastoreRef = Field(description="Engine and version.")
    resources: Resources = Field(
        default_factory=Resources, description="CPU and memory of the engine container."
    )
    storage: Storage = Field(default_factory=Storage, description="The data volume of each pod.")
    databases: list[Database] = Field(
        default_factory=list,
        description="Databases (keyspaces for Cassandra) to create; removing one here never drops it.",
        json_schema_extra=list_map("name"),
    )
    users: list[User] = Field(
        default_factory=list,
        description="Users the operator creates and keeps in line with their grants.",
        json_schema_extra=list_map("name"),
    )
    # Values are strings on the wire (as in ConfigMaps); their types are checked against the engine's catalog.
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description='Engine configuration parameters, values as strings (e.g. max_connections: "500"); '
        "checked against the engine's catalog of supported parameters, types and ranges.",
    )
    # None: disabled, and absent from the wire, so a spec written before TLS existed serialises unchanged.
    tls: TLSSpec | None = Field(default=None, description="TLS on the engine's client port.")
    backup: BackupPolicy | None = Field(default=None, description="Scheduled backups.")
    restore_from: RestoreFrom | None = Field(default=None, description="Create the data from a backup.")
    deletion_policy: DeletionPolicies = Field(
        default_factory=DeletionPolicies,
        description="What deleting this resource does to volumes and backups.",
    )
    # Like a Deployment's progressDeadlineSeconds, per member: measured from the pods themselves (created,
    # or last turned not ready), so it needs no clock of the operator's and survives its restarts.
    progress_deadline_seconds: Annotated[int, Field(ge=30, le=86400)] = Field(
        default=600,
        description="Seconds a member may stay not ready (since its pod was created, or last became not "
        "ready) before the status reports Degraded with the reason it does not run, and a Warning Event.",
    )

    @property
    def tls_mode(self) -> TLSMode:
        """``spec.tls.mode``; disabled without ``spec.tls``."""
        return self.tls.mode if self.tls is not None else TLSMode.DISABLED


class ClusterSpec(InstanceSpec):
    """A replicated topology: primary + replicas, a replica set, or a ring, as the engine has it."""

    replicas: Annotated[int, Field(ge=1, le=15)] = Field(
        default=3, description="Number of members (pods); the engine may restrict it (e.g. odd for MongoDB)."
    )
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy, description="Automatic failover.")
    # Declarative switchover: the pod name (e.g. "orders-1") that should be primary.
    primary: DnsLabel | None = Field(
        default=None,
        description='Declarative switchover: the pod (e.g. "orders-1") that should be primary. '
        "The current primary is in status.primary.",
    )
