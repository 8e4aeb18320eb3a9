"""May this create or update happen? A pure function of the policies, the namespace and the request.

How several policies combine: each policy that selects the namespace is checked ON ITS OWN, and the
request is allowed only when none of them finds a violation. So the strictest wins on every rule
(the smallest limit and quota, the intersection of the engines, every required setting), and each
refusal names the policy and the field it concerns. A namespace no policy selects may create anything
(as without policies) unless the operator runs with ``policy.required`` (then nothing).

Updates (invariants, tested): a violation refuses an update only when it is new, i.e. not already
present with the same offending value in the old object: a resource created before a policy (or a
policy change) keeps working and can be changed in every other respect, deleted, or have its
finalizers removed, but cannot be made worse (a bigger volume past a limit, another version not
allowed). A quota refuses an update only when it makes that dimension of the resource grow. Deletes are
never reviewed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from kubetrove.api.common import DeletionPolicy, Engine
from kubetrove.api.database_policy import EngineRule, PolicySpec, Tier
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.quantity import parse_quantity
from kubetrove.policy import usage as usage_mod
from kubetrove.policy.selector import selects
from kubetrove.policy.usage import Usage

INSTANCE, CLUSTER, BACKUP = "DatabaseInstance", "DatabaseCluster", "DatabaseBackup"


@dataclass(frozen=True)
class NamedPolicy:
    """A DatabasePolicy: its name and parsed spec."""

    name: str
    spec: PolicySpec


@dataclass(frozen=True)
class Violation:
    """One rule of one policy broken by the request."""

    policy: str  # "" when no policy selects the namespace and policies are required
    field: str  # the field (or quota) concerned, e.g. "spec.datastore.version"
    message: str
    rule: str  # a stable key: the same rule broken by the same value is the same violation
    value: str = ""  # the offending value (an update that keeps it is not refused again)

    def __str__(self) -> str:
        who = f"DatabasePolicy {self.policy}: " if self.policy else ""
        return f"{who}{self.field}: {self.message}"


@dataclass(frozen=True)
class Review:
    """One admission request, as the policies see it.

    ``new`` is the spec after the request (an InstanceSpec, a ClusterSpec, or None for a DatabaseBackup);
    ``old`` the spec before an update (None for a create). ``others`` is the namespace's usage WITHOUT
    this object (every other resource, and requests admitted but not yet visible).
    """

    namespace: str
    namespace_labels: Mapping[str, str]
    kind: str
    name: str
    new: InstanceSpec | None
    old: InstanceSpec | None = None
    others: Usage = field(default_factory=Usage)
    new_usage: Usage = field(default_factory=Usage)  # of a DatabaseBackup (databases compute their own)
    old_usage: Usage | None = None


@dataclass(frozen=True)
class Decision:
    """The answer: allowed or not, why, and under which tier and policies the resource is created."""

    violations: tuple[Violation, ...]
    policies: tuple[str, ...]  # the policies selecting the namespace
    tier: Tier | None  # None: no policy restricts engines here (no tier to mark)

    @property
    def allowed(self) -> bool:
        return not self.violations

    def message(self) -> str:
        """Every violation, one after the other (what kubectl prints)."""
        return "; ".join(str(v) for v in self.violations)


def selecting(policies: Sequence[NamedPolicy], labels: Mapping[str, str]) -> list[NamedPolicy]:
    """The policies that select a namespace with ``labels``, by name (a stable order for messages)."""
    return sorted((p for p in policies if selects(p.spec.namespace_selector, labels)), key=lambda p: p.name)


def tier_in(policy: PolicySpec, engine: Engine, version: str) -> Tier | None:
    """The tier ``policy`` gives (engine, version): None when it does not allow it; SUPPORTED when it
    does not restrict engines, or when any rule matching the version says supported."""
    if policy.engines is None:
        return Tier.SUPPORTED
    tiers = {r.tier for r in policy.engines if r.type == engine and (not r.versions or version in r.versions)}
    if not tiers:
        return None
    return Tier.SUPPORTED if Tier.SUPPORTED in tiers else Tier.EVALUATION


def _allowed_text(rules: Sequence[EngineRule], engine: Engine | None = None) -> str:
    parts = []
    for r in rules:
        if engine is not None and r.type != engine:
            continue
        versions = ", ".join(r.versions) if r.versions else "every version"
        tier = " (evaluation)" if r.tier == Tier.EVALUATION else ""
        parts.append(f"{r.type} {versions}{tier}")
    return "; ".join(parts) or "nothing"


def fmt_bytes(value: Fraction) -> str:
    """Bytes in the largest binary unit that divides them exactly (``10Gi``, ``1536Mi``, ``100``)."""
    for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value and value % size == 0:
            return f"{int(value // size)}{unit}"
    return str(int(value)) if value.denominator == 1 else str(float(value))


def fmt_cpu(value: Fraction) -> str:
    """Cores as Kubernetes writes them (``2``, ``1500m``)."""
    if value.denominator == 1:
        return str(int(value))
    return f"{int(value * 1000)}m" if (value * 1000).denominator == 1 else str(float(value))


def _engine_rules(p: NamedPolicy, r: Review, spec: InstanceSpec) -> list[Violation]:
    rules = p.spec.engines
    engine, version = spec.datastore.type, spec.datastore.version
    if rules is None or tier_in(p.spec, engine, version) is not None:
        return []
    if any(rule.type == engine for rule in rules):
        return [
            Violation(
                p.name,
                "spec.datastore.version",
                f"{engine} {version} is not allowed in namespace {r.namespace} "
                f"(allowed: {_allowed_text(rules, engine)})",
                "engines.version",
                f"{engine} {version}",
            )
        ]
    return [
        Violation(
            p.name,
            "spec.datastore.type",
            f"engine {engine} is not allowed in namespace {r.namespace} (allowed: {_allowed_text(rules)})",
            "engines.type",
            str(engine),
        )
    ]


def _limit(p: NamedPolicy, field_: str, rule: str, value: str | None, limit: str | None) -> list[Violation]:
    if value is None or limit is None or parse_quantity(value) <= parse_quantity(limit):
        return []
    # The value as a number: "10Gi" and "10240Mi" are the same volume, not a change.
    return [
        Violation(p.name, field_, f"{value} is over the limit of {limit}", rule, str(parse_quantity(value)))
    ]


def _limits(p: NamedPolicy, spec: InstanceSpec) -> list[Violation]:
    lim = p.spec.limits
    out: list[Violation] = []
    if isinstance(spec, ClusterSpec) and lim.max_replicas is not None and spec.replicas > lim.max_replicas:
        out.append(
            Violation(
                p.name,
                "spec.replicas",
                f"{spec.replicas} members is over the limit of {lim.max_replicas}",
                "limits.maxReplicas",
                str(spec.replicas),
            )
        )
    out += _limit(p, "spec.storage.size", "limits.maxStorage", spec.storage.size, lim.max_storage)
    if spec.storage.autogrow is not None:  # the volumes grow to it with no further request to review
        out += _limit(
            p,
            "spec.storage.autogrow.maximum",
            "limits.maxStorage",
            spec.storage.autogrow.maximum,
            lim.max_storage,
        )
    res = spec.resources
    for side, side_name in ((res.requests, "requests"), (res.limits, "limits")):
        if side is None:
            continue
        out += _limit(p, f"spec.resources.{side_name}.cpu", "limits.maxCpu", side.cpu, lim.max_cpu)
        out += _limit(
            p, f"spec.resources.{side_name}.memory", "limits.maxMemory", side.memory, lim.max_memory
        )
    return out


def _required(p: NamedPolicy, r: Review, spec: InstanceSpec) -> list[Violation]:
    req = p.spec.required
    out: list[Violation] = []
    n = usage_mod.members(spec)
    if req.min_replicas is not None and n < req.min_replicas:
        if isinstance(spec, ClusterSpec):
            out.append(
                Violation(
                    p.name,
                    "spec.replicas",
                    f"{n} members is fewer than the {req.min_replicas} required",
                    "required.minReplicas",
                    str(n),
                )
            )
        else:
            out.append(
                Violation(
                    p.name,
                    "kind",
                    f"a DatabaseInstance has 1 member and at least {req.min_replicas} are required in "
                    f"namespace {r.namespace}: create a DatabaseCluster with spec.replicas >= "
                    f"{req.min_replicas}",
                    "required.minReplicas",
                    "1",
                )
            )
    backup = spec.backup
    if req.scheduled_backups and (backup is None or backup.schedule is None):
        out.append(
            Violation(
                p.name, "spec.backup.schedule", "scheduled backups are required", "required.scheduledBackups"
            )
        )
    if req.verified_backups and (backup is None or not backup.verify):
        out.append(
            Violation(
                p.name,
                "spec.backup.verify",
                "must be true (every backup is test-restored)",
                "required.verifiedBackups",
            )
        )
    if req.retain_volumes and spec.deletion_policy.volumes != DeletionPolicy.RETAIN:
        out.append(
            Violation(
                p.name,
                "spec.deletionPolicy.volumes",
                f"must be Retain, not {spec.deletion_policy.volumes}",
                "required.retainVolumes",
            )
        )
    if req.automatic_failover and isinstance(spec, ClusterSpec) and not spec.failover.automatic:
        out.append(Violation(p.name, "spec.failover.automatic", "must be true", "required.automaticFailover"))
    return out


def _unstated(p: NamedPolicy, spec: InstanceSpec | None) -> list[Violation]:
    """A CPU or memory quota needs every resource to state what it takes (as ResourceQuota does)."""
    if spec is None:
        return []
    out = []
    for resource, quota in (("cpu", p.spec.quotas.cpu), ("memory", p.spec.quotas.memory)):
        if quota is not None and usage_mod.compute(spec, resource) is None:
            out.append(
                Violation(
                    p.name,
                    f"spec.resources.requests.{resource}",
                    f"must be set: namespace quota on {resource} ({quota})",
                    f"unstated.{resource}",
                )
            )
    return out


def _quotas(p: NamedPolicy, r: Review, new: Usage, old: Usage | None) -> list[Violation]:
    """Quota violations of the namespace after the request; on update only dimensions that grow."""
    q = p.spec.quotas
    after = r.others + new
    out: list[Violation] = []

    def grows(dim: str) -> bool:
        return old is None or getattr(new, dim) > getattr(old, dim)

    counts = (
        ("instances", q.instances, after.instances, "DatabaseInstances", "kind"),
        ("clusters", q.clusters, after.clusters, "DatabaseClusters", "kind"),
        ("backups", q.backups, after.backups, "retained backups", "spec.backup.keep"),
    )
    for dim, limit, value, what, field_ in counts:
        if limit is not None and value > limit and grows(dim):
            if dim == "backups" and r.kind == BACKUP:
                field_ = "kind"
            out.append(
                Violation(
                    p.name,
                    f"quotas.{dim} ({field_})",
                    f"namespace {r.namespace} would have {value} {what}, over its quota of {limit}",
                    f"quotas.{dim}",
                )
            )
    autogrow = isinstance(r.new, InstanceSpec) and r.new.storage.autogrow is not None
    storage_field = "spec.storage.autogrow.maximum" if autogrow else "spec.storage.size"
    amounts = (
        ("storage", q.storage, after.storage, fmt_bytes, storage_field),
        ("cpu", q.cpu, after.cpu, fmt_cpu, "spec.resources.requests.cpu"),
        ("memory", q.memory, after.memory, fmt_bytes, "spec.resources.requests.memory"),
    )
    for dim, limit_text, amount, fmt, field_ in amounts:
        if limit_text is not None and amount > parse_quantity(limit_text) and grows(dim):
            out.append(
                Violation(
                    p.name,
                    f"quotas.{dim} ({field_})",
                    f"namespace {r.namespace} would use {fmt(amount)} of {dim}, "
                    f"over its quota of {limit_text}",
                    f"quotas.{dim}",
                )
            )
    return out


def _violations(p: NamedPolicy, r: Review, spec: InstanceSpec | None) -> list[Violation]:
    """Every rule of ``p`` (except quotas) that ``spec`` breaks."""
    if spec is None:
        return []
    return _engine_rules(p, r, spec) + _limits(p, spec) + _required(p, r, spec) + _unstated(p, spec)


def decide(policies: Sequence[NamedPolicy], r: Review, require_policy: bool = False) -> Decision:
    """The decision on ``r`` under ``policies`` (all of them; the ones selecting the namespace apply)."""
    chosen = selecting(policies, r.namespace_labels)
    names = tuple(p.name for p in chosen)
    if not chosen:
        if require_policy:
            why = Violation(
                "",
                "metadata.namespace",
                f"no DatabasePolicy selects namespace {r.namespace}, and the operator is installed to "
                "refuse databases in such namespaces (policy.required)",
                "required.policy",
            )
            return Decision((why,), (), None)
        return Decision((), (), None)
    new_usage = usage_mod.of_database(r.new) if r.new is not None else r.new_usage
    old_usage = usage_mod.of_database(r.old) if r.old is not None else r.old_usage
    found: list[Violation] = []
    for p in chosen:
        found += _violations(p, r, r.new)
        found += _quotas(p, r, new_usage, old_usage)
    if r.old is not None or r.old_usage is not None:
        # An update: what the old object already broke, with the same value, stays tolerated.
        before = {(v.policy, v.rule, v.value) for p in chosen for v in _violations(p, r, r.old)}
        found = [
            v for v in found if v.rule.startswith("quotas.") or (v.policy, v.rule, v.value) not in before
        ]
    return Decision(tuple(found), names, _tier(chosen, r.new))


def _tier(chosen: Sequence[NamedPolicy], spec: InstanceSpec | None) -> Tier | None:
    """EVALUATION when any policy restricting engines has this version in evaluation; else SUPPORTED;
    None when no policy restricts engines (nothing to mark)."""
    if spec is None or all(p.spec.engines is None for p in chosen):
        return None
    tiers = [tier_in(p.spec, spec.datastore.type, spec.datastore.version) for p in chosen]
    return Tier.EVALUATION if Tier.EVALUATION in tiers else Tier.SUPPORTED


def standing_violations(
    p: NamedPolicy, namespace: str, kind: str, name: str, spec: InstanceSpec
) -> list[Violation]:
    """What an existing resource breaks of ``p`` (every rule but the quotas, which are the namespace's)."""
    return _violations(p, Review(namespace, {}, kind, name, spec), spec)


def quotas_over(p: NamedPolicy, namespace: str, used: Usage) -> list[str]:
    """The quotas of ``p`` that ``used`` (a namespace's usage) is over: "clusters", "storage", ..."""
    review = Review(namespace, {}, "", "", None, others=used)
    return sorted({v.rule.removeprefix("quotas.") for v in _quotas(p, review, Usage(), None)})
