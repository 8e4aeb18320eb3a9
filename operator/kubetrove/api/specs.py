"""Specs of DatabaseInstance and DatabaseCluster: the same shape for every engine."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from kubetrove.api.base import ApiModel
from kubetrove.api.common import Database, DatastoreRef, Resources, Storage, User
from kubetrove.api.policies import BackupPolicy, DeletionPolicies, FailoverPolicy, RestoreFrom


class InstanceSpec(ApiModel):
    """A standalone database server (one pod)."""

    datastore: DatastoreRef
    resources: Resources = Field(default_factory=Resources)
    storage: Storage = Field(default_factory=Storage)
    databases: list[Database] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    # Values are strings on the wire (as in ConfigMaps); their types are checked against the engine's catalog.
    parameters: dict[str, str] = Field(default_factory=dict)
    backup: BackupPolicy | None = None
    restore_from: RestoreFrom | None = None
    deletion_policy: DeletionPolicies = Field(default_factory=DeletionPolicies)


class ClusterSpec(InstanceSpec):
    """A replicated topology: primary + replicas, a replica set, or a ring, as the engine has it."""

    replicas: Annotated[int, Field(ge=1, le=15)] = 3
    failover: FailoverPolicy = Field(default_factory=FailoverPolicy)
    # Declarative switchover: the pod name (e.g. "orders-1") that should be primary.
    primary: str | None = None
