"""Value types shared by every kind: engines, storage, users and grants, conditions."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints

from kubetrove.api.base import ApiModel

GROUP = "kubetrove.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# RFC 1123 label: what Kubernetes accepts as a Service/StatefulSet name part.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes resource.Quantity as the API server's OpenAPI spec for it reads (binary/decimal SI suffixes or
# an exponent), without the sign: no size or CPU count here can be negative. RE2-compatible (the API server
# evaluates CRD patterns with Go's regexp).
QUANTITY = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# Portable object names: a common subset every engine accepts as an identifier (validated again,
# engine-specifically, by the agent; always quoted there).
OBJECT_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,47}$"


def _int_to_str(value: Any) -> Any:
    """Accept YAML integers where Kubernetes does (``cpu: 2``); the model always holds the string form."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def list_map(*keys: str) -> dict[str, Any]:
    """CRD list markers: items are unique by ``keys`` (duplicates are refused; SSA merges by key)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def cel(rule: str, message: str) -> dict[str, Any]:
    """One CEL validation rule for the CRD (``x-kubernetes-validations``), evaluated by the API server."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}

DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL, max_length=63)]
# int-or-string on the wire, like Kubernetes' own quantities; always ``str`` in Python.
Quantity = Annotated[
    str,
    StringConstraints(pattern=QUANTITY),
    BeforeValidator(_int_to_str),  # wraps the constrained str: runs first, and the schema keeps the pattern
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]
ObjectName = Annotated[str, StringConstraints(pattern=OBJECT_NAME)]
# A growth step: a quantity ("2Gi") or a percentage of the current size ("25%", 1 to 100).
INCREMENT = r"^(([1-9][0-9]?|100)%|" + QUANTITY[1:-1] + r")$"
Increment = Annotated[
    str,
    StringConstraints(pattern=INCREMENT),
    BeforeValidator(_int_to_str),
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]


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


class TLSMode(enum.StrEnum):
    """What the engine's client port serves (``spec.tls.mode``)."""

    DISABLED = "disabled"  # plaintext only, as before
    OPTIONAL = "optional"  # TLS offered, plaintext still accepted
    REQUIRED = "required"  # plaintext client connections refused by the engine


class TLSSpec(ApiModel):
    """Client TLS of the engine (docs/security.md, "Client TLS")."""

    mode: TLSMode = Field(
        default=TLSMode.DISABLED,
        description="disabled (plaintext), optional (TLS offered, plaintext accepted) or required "
        "(plaintext client connections refused).",
    )
    secret_name: DnsLabel | None = Field(
        default=None,
        description="A Secret of yours (tls.crt, tls.key, optional ca.crt) to serve instead of a "
        "certificate the operator issues from the installation's CA.",
    )


class DatastoreRef(ApiModel):
    """Which engine, and which version of it (validated against the engine's catalog by the operator)."""

    # Changing engines in place would need a dump and reload: refused, a new resource restores from a backup.
    model_config = ConfigDict(
        json_schema_extra=cel(
            "self.type == oldSelf.type",
            "datastore.type is immutable: create a new resource (restoreFrom a backup) to change engines",
        )
    )

    type: Engine = Field(description="Database engine: mysql, mariadb, postgresql, mongodb or cassandra.")
    version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")] = Field(
        description='Engine version, e.g. "8.4" or "16"; must be one the operator supports for this engine. '
        "Changing it is an upgrade (or a refused downgrade)."
    )
    # Air-gapped clusters pull from a mirror; the catalog names public images. The operator cannot check
    # what the image holds: it must be this engine at this version (the version still drives upgrades).
    image: Annotated[str, StringConstraints(pattern=r"^[^\s]+$", max_length=512)] | None = Field(
        default=None,
        description="The engine image to run instead of the catalog's image for this version (a mirror, "
        "or a rebuild of the same version). It must hold this engine at this version.",
    )


class ResourceList(ApiModel):
    """CPU and memory, as Kubernetes quantities."""

    cpu: Quantity | None = Field(default=None, description='CPU, e.g. "500m" or 2.')
    memory: Quantity | None = Field(default=None, description='Memory, e.g. "1Gi".')


class Resources(ApiModel):
    """Compute resources of the engine container (the agent sidecar has its own small fixed budget)."""

    requests: ResourceList | None = Field(
        default=None, description="Guaranteed resources (used for scheduling)."
    )
    limits: ResourceList | None = Field(default=None, description="Upper bounds.")


class Autogrow(ApiModel):
    """Automatic growth of the data volumes before they fill (docs/operations.md, "Autogrow").

    Present means on. The grown size is kept in ``status.storage.size``, never written back to the spec
    (GitOps would revert it); the volumes are ``max(spec.storage.size, status.storage.size)``.
    """

    threshold: int = Field(
        default=80,
        ge=50,
        le=95,
        description="Grow when a member's data volume is at least this full, in percent of what the "
        "engine can use (df's Use%: used / (used + available)).",
    )
    increment: Increment = Field(
        default="20%",
        description='How much one growth adds: a quantity of at least 1Mi ("2Gi") or a whole percentage '
        'of the current size ("20%", 1 to 100; without its sign, 20 is 20 bytes and refused). Capped at '
        "maximum.",
    )
    maximum: Quantity = Field(
        description="The volumes never grow past this size (at least spec.storage.size, less than 8Ei). "
        "Reaching it with a volume still over threshold sets the StorageAutogrow condition False "
        "(MaximumReached)."
    )


class Storage(ApiModel):
    """The data volume. It may grow (where the StorageClass allows expansion), never shrink."""

    size: Quantity = Field(
        default="1Gi", description="Volume size per pod; it can be increased, never decreased."
    )
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the volumes; the cluster's default class when absent."
    )
    autogrow: Autogrow | None = Field(
        default=None,
        description="Grow the volumes automatically before they fill, up to a maximum (the StorageClass "
        "must allow expansion). Absent: sizes change only with spec.storage.size.",
    )


class Database(ApiModel):
    """A database (a keyspace for Cassandra) created and kept by the operator."""

    name: ObjectName = Field(description="Name: a letter or underscore, then letters, digits, underscores.")
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=15,
        description="Cassandra only: nodes holding each row of the keyspace, at most the ring size "
        "(default: the ring size, at most 3). Other engines replicate every database to every member.",
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret in the resource's namespace."""

    name: DnsLabel = Field(description="Secret name.")
    key: str = Field(default="password", min_length=1, description="Key inside the Secret.")


class Grant(ApiModel):
    """Portable privileges of a user on one database."""

    database: ObjectName = Field(description="A database listed in spec.databases.")
    privileges: Annotated[list[Privilege], Field(min_length=1)] = Field(
        description="read, readWrite or admin; mapped to the engine's own privileges or roles.",
        json_schema_extra=LIST_SET,
    )


class User(ApiModel):
    """A database user. Its password comes from ``passwordSecretRef``, or is generated into a Secret."""

    name: ObjectName = Field(
        description="User name: a letter or underscore, then letters, digits, underscores."
    )
    password_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the password. When absent the operator generates a password "
        "into a Secret of its own.",
    )
    grants: list[Grant] = Field(default_factory=list, description="What the user may do, per database.")


class ConditionStatus(enum.StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition (metav1.Condition's shape)."""

    type: str = Field(description="Ready, Progressing, Degraded, Failed, BackupVerified.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason of the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str | None = Field(
        default=None, description="RFC 3339 time the status last changed."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed from."
    )


class Endpoints(ApiModel):
    """Where clients connect: in-cluster Service host:port."""

    read_write: str | None = Field(
        default=None, description="host:port of the read-write Service (the primary)."
    )
    read_only: str | None = Field(default=None, description="host:port of the read-only Service (replicas).")
