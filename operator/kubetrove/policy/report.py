"""A DatabasePolicy's status: usage per selected namespace, quotas exceeded, existing violators. PURE.

A policy created or tightened after resources exist does not change or delete them (admission only
keeps them from getting worse); this report is how they are found: ``kubectl get dbp NAME -o yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubetrove.api.database_policy import NamespaceUsage, PolicyStatus, Violator
from kubetrove.api.specs import InstanceSpec
from kubetrove.policy.decide import NamedPolicy, fmt_bytes, fmt_cpu, quotas_over, standing_violations
from kubetrove.policy.selector import selects
from kubetrove.policy.usage import Usage, total


@dataclass(frozen=True)
class Item:
    """One resource of a namespace: its kind and name, its spec (None for backups or an unparsable
    spec) and what it counts."""

    kind: str
    name: str
    spec: InstanceSpec | None
    usage: Usage


def report(
    policy: NamedPolicy,
    namespaces: Mapping[str, Mapping[str, str]],
    items: Mapping[str, Sequence[Item]],
    generation: int | None = None,
) -> PolicyStatus:
    """The status of ``policy`` given every namespace's labels and the resources of each."""
    usages, violators = [], []
    for ns in sorted(
        n for n, labels in namespaces.items() if selects(policy.spec.namespace_selector, labels)
    ):
        mine = items.get(ns, ())
        used = total([i.usage for i in mine])
        usages.append(
            NamespaceUsage(
                namespace=ns,
                instances=used.instances,
                clusters=used.clusters,
                storage=fmt_bytes(used.storage),
                cpu=fmt_cpu(used.cpu),
                memory=fmt_bytes(used.memory),
                backups=used.backups,
                over_quota=quotas_over(policy, ns, used),
            )
        )
        for item in sorted(mine, key=lambda i: (i.kind, i.name)):
            if item.spec is None:
                continue
            found = standing_violations(policy, ns, item.kind, item.name, item.spec)
            if found:
                message = "; ".join(f"{v.field}: {v.message}" for v in found)
                violators.append(Violator(namespace=ns, kind=item.kind, name=item.name, message=message))
    return PolicyStatus(observed_generation=generation, namespaces=usages, violators=violators)
