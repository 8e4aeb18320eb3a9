"""What a resource counts against a namespace's quotas, and the sums.

Invariants (property-tested): usage is additive (a namespace's usage is the sum of its resources'),
never negative, and a cluster with n members counts n times its per-member storage, CPU and memory.
Storage per member is spec.storage.size, or spec.storage.autogrow.maximum when autogrow is on and it is
larger: what the volumes may grow to without another request.
CPU and memory count the engine container's request, or its limit when it has no request (Kubernetes
then sets the request to the limit); neither stated counts 0 (with a CPU or memory quota such a
resource is refused at admission, so it cannot slip under the quota that way).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from kubetrove.api.backup import SCHEDULED_BY
from kubetrove.api.common import ResourceList
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.quantity import parse_quantity

ZERO = Fraction(0)


@dataclass(frozen=True)
class Usage:
    """Counts and totals of one resource, or of a namespace."""

    instances: int = 0
    clusters: int = 0
    storage: Fraction = ZERO  # bytes
    cpu: Fraction = ZERO  # cores
    memory: Fraction = ZERO  # bytes
    backups: int = 0  # retained: spec.backup.keep of scheduled resources, plus hand-made DatabaseBackups

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.instances + other.instances,
            self.clusters + other.clusters,
            self.storage + other.storage,
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.backups + other.backups,
        )

    def most(self, other: Usage) -> Usage:
        """Dimension by dimension, the larger of the two (the conservative view of one object)."""
        return Usage(
            max(self.instances, other.instances),
            max(self.clusters, other.clusters),
            max(self.storage, other.storage),
            max(self.cpu, other.cpu),
            max(self.memory, other.memory),
            max(self.backups, other.backups),
        )


def total(usages: list[Usage]) -> Usage:
    """The sum of ``usages``."""
    out = Usage()
    for u in usages:
        out = out + u
    return out


def members(spec: InstanceSpec) -> int:
    """Pods of the resource: its replicas for a cluster, 1 for an instance."""
    return spec.replicas if isinstance(spec, ClusterSpec) else 1


def compute(spec: InstanceSpec, resource: str) -> Fraction | None:
    """The per-member amount of ``resource`` ("cpu" or "memory") counted, or None when not stated."""
    for side in (spec.resources.requests, spec.resources.limits):
        value = getattr(side or ResourceList(), resource)
        if value is not None:
            return parse_quantity(value)
    return None


def volume_bound(spec: InstanceSpec) -> Fraction:
    """The most one member's data volume may take: spec.storage.size, or with autogrow its maximum when
    larger (autogrow grows the volumes without a spec change, so no later admission request sees it)."""
    size = parse_quantity(spec.storage.size)
    auto = spec.storage.autogrow
    return max(size, parse_quantity(auto.maximum)) if auto is not None else size


def of_database(spec: InstanceSpec) -> Usage:
    """What one DatabaseInstance or DatabaseCluster (ClusterSpec) counts."""
    n = members(spec)
    cluster = isinstance(spec, ClusterSpec)
    scheduled = spec.backup is not None and spec.backup.schedule is not None
    return Usage(
        instances=0 if cluster else 1,
        clusters=1 if cluster else 0,
        storage=n * volume_bound(spec),
        cpu=n * (compute(spec, "cpu") or ZERO),
        memory=n * (compute(spec, "memory") or ZERO),
        backups=spec.backup.keep if scheduled and spec.backup is not None else 0,
    )


def of_backup(labels: dict[str, str]) -> Usage:
    """What one DatabaseBackup counts: 1 unless a schedule made it (counted by its source's keep)."""
    return Usage(backups=0 if SCHEDULED_BY in labels else 1)
