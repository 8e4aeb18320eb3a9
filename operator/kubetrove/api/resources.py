"""The three custom resources: name, kind, plural, short names, and their spec/status models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from kubetrove.api.backup import BackupSpec, BackupStatus
from kubetrove.api.base import ApiModel
from kubetrove.api.database_policy import PolicySpec, PolicyStatus
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.api.status import ResourceStatus

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and the models its spec and status parse into."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    spec: type[ApiModel]
    # None: the kind has no status (nothing writes one; the CRD then has no status subresource).
    status: type[ApiModel] | None
    namespaced: bool = True


INSTANCE = Kind(
    "DatabaseInstance", "databaseinstances", "databaseinstance", ("dbi",), InstanceSpec, ResourceStatus
)
CLUSTER = Kind(
    "DatabaseCluster", "databaseclusters", "databasecluster", ("dbc",), ClusterSpec, ResourceStatus
)
BACKUP = Kind("DatabaseBackup", "databasebackups", "databasebackup", ("dbb",), BackupSpec, BackupStatus)
POLICY = Kind(
    "DatabasePolicy",
    "databasepolicies",
    "databasepolicy",
    ("dbp",),
    PolicySpec,
    PolicyStatus,
    namespaced=False,
)
KINDS: tuple[Kind, ...] = (INSTANCE, CLUSTER, BACKUP, POLICY)
CATEGORY = "kubetrove"


@dataclass(frozen=True)
class ObjectRef:
    """The identity of one custom resource object (what owner references and events need)."""

    namespace: str
    name: str
    uid: str
    generation: int
    kind: Kind
    resource_version: str = ""  # of the body this ref was parsed from (a status refresh's write precondition)


@dataclass(frozen=True)
class Parsed(Generic[S]):
    """A custom resource body parsed once at the boundary: identity + typed spec + raw labels/annotations."""

    ref: ObjectRef
    spec: S
    labels: dict[str, str]
    annotations: dict[str, str]


def parse_body(kind: Kind, body: Any, spec_type: type[S]) -> Parsed[S]:
    """Parse a CR body (a mapping as kopf or the API server gives it) into ``Parsed``.

    Raises pydantic.ValidationError on a spec the schema let through but the model refuses.
    """
    meta = body["metadata"]
    ref = ObjectRef(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        kind=kind,
        resource_version=str(meta.get("resourceVersion") or ""),
    )
    spec = spec_type.model_validate(body.get("spec") or {})
    return Parsed(ref, spec, dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}))
