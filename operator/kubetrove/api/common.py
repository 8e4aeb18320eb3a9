"""Value types shared by every kind: engines, storage, users and grants, conditions."""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import Field, StringConstraints

from kubetrove.api.base import ApiModel

GROUP = "kubetrove.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# RFC 1123 label: what Kubernetes accepts as a Service/StatefulSet name part.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes resource.Quantity, as the API server's own regex (binary/decimal SI suffixes).
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
# Portable object names: a common subset every engine accepts as an identifier (validated again,
# engine-specifically, by the agent; always quoted there).
OBJECT_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,47}$"

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY)]
ObjectName = Annotated[str, StringConstraints(pattern=OBJECT_NAME)]


class Engine(enum.StrEnum):
    """The datastores kubetrove manages. Adding one means adding a module in ``kubetrove.datastores``."""

    MYSQL = "mysql"
    MARIADB = "mariadb"
    POSTGRESQL = "postgresql"
    MONGODB = "mongodb"
    CASSANDRA = "cassandra"


class Privilege(enum.StrEnum):
    """Portable privileges, mapped to each engine's own privileges or roles by the agent."""

    READ = "read"
    READ_WRITE = "readWrite"
    ADMIN = "admin"


class DeletionPolicy(enum.StrEnum):
    """What happens to data (volumes, backups) when the resource is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class DatastoreRef(ApiModel):
    """Which engine, and which version of it (validated against the engine's catalog by the operator)."""

    type: Engine
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")]


class ResourceList(ApiModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(ApiModel):
    """Compute resources of the engine container (the agent sidecar has its own small fixed budget)."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None


class Storage(ApiModel):
    """The data volume. It may grow (where the StorageClass allows expansion), never shrink."""

    size: Quantity = "1Gi"
    storage_class_name: str | None = None


class Database(ApiModel):
    """A database (a keyspace for Cassandra) created and kept by the operator."""

    name: ObjectName


class SecretKeyRef(ApiModel):
    name: DnsLabel
    key: str = "password"


class Grant(ApiModel):
    database: ObjectName
    privileges: Annotated[list[Privilege], Field(min_length=1)]


class User(ApiModel):
    """A database user. Its password comes from ``passwordSecretRef``, or is generated into a Secret."""

    name: ObjectName
    password_secret_ref: SecretKeyRef | None = None
    grants: list[Grant] = Field(default_factory=list)


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition's shape)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Endpoints(ApiModel):
    read_write: str | None = None
    read_only: str | None = None
