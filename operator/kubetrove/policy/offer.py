"""``namespace_offer``: what may a namespace create? The catalog as the namespace's policies see it.

The same rules as ``decide`` (the same ``tier_in`` per policy, the strictest policy winning), so a
version offered here is one a compliant create is admitted with, at the tier shown (property-tested).
``kubectl trove catalog`` prints it; the console offers only what it lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubetrove.api.common import Engine
from kubetrove.api.database_policy import Tier
from kubetrove.datastores import registry
from kubetrove.datastores.quantity import parse_quantity
from kubetrove.policy.decide import NamedPolicy, fmt_bytes, fmt_cpu, selecting, tier_in
from kubetrove.policy.usage import Usage


@dataclass(frozen=True)
class OfferedVersion:
    """One catalog version the namespace may create, and its maturity tier there."""

    engine: Engine
    version: str
    tier: Tier


@dataclass(frozen=True)
class Offer:
    """What a namespace may create and within which bounds (the strictest of its policies)."""

    namespace: str
    policies: tuple[str, ...]  # the policies selecting it (empty: none)
    versions: tuple[OfferedVersion, ...]
    limits: Mapping[str, Any]  # maxReplicas, maxStorage, maxCpu, maxMemory: the smallest stated
    quotas: Mapping[str, Any]  # instances, clusters, storage, cpu, memory, backups: the smallest stated
    required: Mapping[str, Any]  # minReplicas (the largest), and the required settings any policy sets
    refused: str = ""  # why nothing may be created, when nothing may

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready (camelCase, as the API), for ``-o json`` and the console."""
        return {
            "namespace": self.namespace,
            "policies": list(self.policies),
            "versions": [
                {"engine": str(v.engine), "version": v.version, "tier": str(v.tier)} for v in self.versions
            ],
            "limits": dict(self.limits),
            "quotas": dict(self.quotas),
            "required": dict(self.required),
            **({"refused": self.refused} if self.refused else {}),
        }


def catalog() -> dict[Engine, tuple[str, ...]]:
    """The operator's catalog: every engine's versions, newest-default first as the registry has them."""
    return {engine: tuple(store.versions) for engine, store in registry.REGISTRY.items()}


def _smallest(values: list[str]) -> str | None:
    return min(values, key=parse_quantity) if values else None


def namespace_offer(
    policies: Sequence[NamedPolicy],
    namespace: str,
    labels: Mapping[str, str],
    versions: Mapping[Engine, Sequence[str]] | None = None,
    require_policy: bool = False,
) -> Offer:
    """What ``namespace`` (with ``labels``) may create under ``policies``; ``versions`` defaults to the
    operator's catalog."""
    chosen = selecting(policies, labels)
    names = tuple(p.name for p in chosen)
    if not chosen and require_policy:
        why = f"no DatabasePolicy selects namespace {namespace} (the operator requires one)"
        return Offer(namespace, (), (), {}, {}, {}, refused=why)
    offered = []
    for engine, engine_versions in (catalog() if versions is None else versions).items():
        for version in engine_versions:
            tiers = [tier_in(p.spec, engine, version) for p in chosen]
            if None in tiers:
                continue
            tier = Tier.EVALUATION if Tier.EVALUATION in tiers else Tier.SUPPORTED
            offered.append(OfferedVersion(engine, version, tier))
    specs = [p.spec for p in chosen]
    limits: dict[str, Any] = {}
    replicas = [s.limits.max_replicas for s in specs if s.limits.max_replicas is not None]
    if replicas:
        limits["maxReplicas"] = min(replicas)
    for key, attr in (("maxStorage", "max_storage"), ("maxCpu", "max_cpu"), ("maxMemory", "max_memory")):
        if (v := _smallest([getattr(s.limits, attr) for s in specs if getattr(s.limits, attr)])) is not None:
            limits[key] = v
    quotas: dict[str, Any] = {}
    for key in ("instances", "clusters", "backups"):
        counts = [getattr(s.quotas, key) for s in specs if getattr(s.quotas, key) is not None]
        if counts:
            quotas[key] = min(counts)
    for key in ("storage", "cpu", "memory"):
        if (v := _smallest([getattr(s.quotas, key) for s in specs if getattr(s.quotas, key)])) is not None:
            quotas[key] = v
    required: dict[str, Any] = {}
    mins = [s.required.min_replicas for s in specs if s.required.min_replicas is not None]
    if mins:
        required["minReplicas"] = max(mins)
    for key, attr in (
        ("scheduledBackups", "scheduled_backups"),
        ("verifiedBackups", "verified_backups"),
        ("retainVolumes", "retain_volumes"),
        ("automaticFailover", "automatic_failover"),
    ):
        if any(getattr(s.required, attr) for s in specs):
            required[key] = True
    return Offer(namespace, names, tuple(offered), limits, quotas, required)


def remaining(offer: Offer, used: Usage) -> dict[str, Any]:
    """What is left of each quota of ``offer`` given the namespace's usage (counts and amounts as text)."""
    left: dict[str, Any] = {}
    for key in ("instances", "clusters", "backups"):
        if key in offer.quotas:
            left[key] = max(0, offer.quotas[key] - getattr(used, key))
    for key, fmt in (("storage", fmt_bytes), ("cpu", fmt_cpu), ("memory", fmt_bytes)):
        if key in offer.quotas:
            left[key] = fmt(max(parse_quantity(offer.quotas[key]) - getattr(used, key), parse_quantity("0")))
    return left
