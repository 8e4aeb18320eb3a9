"""DatabasePolicy (cluster-scoped): what the namespaces it selects may create, decided at admission.

The decisions themselves are pure code in ``kubetrove.policy``; the webhook that applies them lives in
``kubetrove.admission`` (docs/policy.md explains the model). A policy states:

- ``engines``: which engines and versions may be created, each with a maturity ``tier``: ``supported``,
  or ``evaluation`` (a proof of concept: allowed, and labelled ``kubetrove.io/tier: evaluation`` on every
  resource created under it so nobody mistakes it for supported);
- ``limits``: per resource (members, storage, CPU and memory per member);
- ``quotas``: per namespace (instances, clusters, total storage, CPU and memory, retained backups);
- ``required``: settings every resource must have (scheduled and verified backups, Retain volumes, a
  minimum number of members, automatic failover).

Several policies may select one namespace: each is checked on its own and every one must allow the
request, so the strictest wins on every rule (the refusal names each policy that refused).
"""

from __future__ import annotations

import enum
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from kubetrove.api.base import ApiModel
from kubetrove.api.common import LIST_SET, Engine, Quantity, cel, list_map

# Set at admission on every DatabaseInstance and DatabaseCluster that policies govern: "evaluation" or
# "supported" (the tier), and the policies that selected its namespace.
TIER_LABEL = "kubetrove.io/tier"
POLICIES_ANNOTATION = "kubetrove.io/policies"

# A label key as Kubernetes has it: an optional DNS-subdomain prefix and a name of at most 63 characters.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY, max_length=316)]
LabelValue = Annotated[
    str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", max_length=63)
]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")]


class SelectorOperator(enum.StrEnum):
    """metav1.LabelSelectorRequirement's operators."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class SelectorRequirement(ApiModel):
    """One requirement on a namespace label (metav1.LabelSelectorRequirement)."""

    # What the API server demands of its own LabelSelectors: In/NotIn need values, Exists/DoesNotExist none.
    model_config = ConfigDict(
        json_schema_extra=cel(
            "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
            "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
        )
    )

    key: LabelKey = Field(description="The label key.")
    operator: SelectorOperator = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: Annotated[list[LabelValue], Field(max_length=64)] = Field(
        default_factory=list,
        description="Values for In and NotIn (at least one); empty for Exists and DoesNotExist.",
        json_schema_extra=LIST_SET,
    )

    @model_validator(mode="after")
    def _values_match_the_operator(self) -> SelectorRequirement:
        if (self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)) != bool(self.values):
            raise ValueError(
                "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist"
            )
        return self


class NamespaceSelector(ApiModel):
    """Which namespaces the policy applies to, by their labels (metav1.LabelSelector); {} selects all."""

    # Keys are not checked by the schema: a structural schema has no pattern for map keys.
    match_labels: dict[str, LabelValue] = Field(
        default_factory=dict, description="Labels a namespace must have, with these values."
    )
    # Bounded, so the API server can bound the cost of the CEL rule on each requirement.
    match_expressions: Annotated[list[SelectorRequirement], Field(max_length=32)] = Field(
        default_factory=list, description="Requirements a namespace's labels must all meet."
    )


class Tier(enum.StrEnum):
    """Maturity of an engine version in the namespaces a policy selects."""

    SUPPORTED = "supported"
    EVALUATION = "evaluation"


class EngineRule(ApiModel):
    """An engine (and some or all of its versions) that may be created, and at which maturity tier."""

    type: Engine = Field(description="The engine: mysql, mariadb, postgresql, mongodb or cassandra.")
    versions: list[Version] = Field(
        default_factory=list,
        description='Versions allowed (catalog versions, e.g. "10.11"); empty: every version the '
        "operator's catalog has for this engine.",
        json_schema_extra=LIST_SET,
    )
    tier: Tier = Field(
        default=Tier.SUPPORTED,
        description="supported, or evaluation (a proof of concept: allowed, and every resource created "
        "under it is labelled kubetrove.io/tier=evaluation).",
    )


class ResourceLimits(ApiModel):
    """Upper bounds on ONE DatabaseInstance or DatabaseCluster."""

    max_replicas: Annotated[int, Field(ge=1, le=15)] | None = Field(
        default=None, description="Most members of a DatabaseCluster."
    )
    max_storage: Quantity | None = Field(default=None, description="Largest volume per member.")
    max_cpu: Quantity | None = Field(
        default=None, description="Largest CPU request and limit of the engine container, per member."
    )
    max_memory: Quantity | None = Field(
        default=None, description="Largest memory request and limit of the engine container, per member."
    )


class NamespaceQuotas(ApiModel):
    """Totals over everything in ONE namespace (each namespace the policy selects has its own)."""

    instances: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Most DatabaseInstances in the namespace."
    )
    clusters: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Most DatabaseClusters in the namespace."
    )
    storage: Quantity | None = Field(
        default=None, description="Most storage: the volume size times the members, summed."
    )
    cpu: Quantity | None = Field(
        default=None,
        description="Most CPU requested: the engine container's request (its limit when no request) "
        "times the members, summed; with this quota every resource must state its CPU.",
    )
    memory: Quantity | None = Field(
        default=None,
        description="Most memory requested, counted like cpu; with this quota every resource must "
        "state its memory.",
    )
    backups: Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        description="Most retained backups: spec.backup.keep of every resource with a backup schedule, "
        "plus the DatabaseBackups created by hand.",
    )


class RequiredSettings(ApiModel):
    """Settings every DatabaseInstance and DatabaseCluster in the selected namespaces must have."""

    min_replicas: Annotated[int, Field(ge=1, le=15)] | None = Field(
        default=None,
        description="Fewest members (a DatabaseInstance has one: with 2 or more, only clusters are allowed).",
    )
    scheduled_backups: bool = Field(default=False, description="spec.backup.schedule must be set.")
    verified_backups: bool = Field(
        default=False, description="spec.backup.verify must be true (every backup is test-restored)."
    )
    retain_volumes: bool = Field(default=False, description="spec.deletionPolicy.volumes must be Retain.")
    automatic_failover: bool = Field(
        default=False, description="DatabaseClusters must keep spec.failover.automatic true."
    )


class PolicySpec(ApiModel):
    """What the namespaces this policy selects may create."""

    namespace_selector: NamespaceSelector = Field(
        description="The namespaces this policy applies to, by label ({} selects every namespace)."
    )
    engines: list[EngineRule] | None = Field(
        default=None,
        description="Engines and versions that may be created; absent: this policy does not restrict "
        "engines; empty: nothing may be created.",
    )
    limits: ResourceLimits = Field(default_factory=ResourceLimits, description="Limits per resource.")
    quotas: NamespaceQuotas = Field(default_factory=NamespaceQuotas, description="Quotas per namespace.")
    required: RequiredSettings = Field(
        default_factory=RequiredSettings, description="Settings every resource must have."
    )


class NamespaceUsage(ApiModel):
    """What one selected namespace uses, counted as the quotas count it."""

    namespace: str = Field(description="The namespace.")
    instances: int = Field(default=0, description="DatabaseInstances.")
    clusters: int = Field(default=0, description="DatabaseClusters.")
    storage: str = Field(default="0", description="Storage: the volume size times the members, summed.")
    cpu: str = Field(default="0", description="CPU requested (the limit when no request), times the members.")
    memory: str = Field(default="0", description="Memory requested, counted like cpu.")
    backups: int = Field(default=0, description="Retained backups, counted like the backups quota.")
    over_quota: list[str] = Field(
        default_factory=list,
        description="The quotas this namespace is over (after a policy change; admission keeps new "
        "requests within them).",
        json_schema_extra=LIST_SET,
    )


class Violator(ApiModel):
    """An existing resource that breaks the policy (created before it, or before a change of it)."""

    namespace: str = Field(description="Its namespace.")
    kind: str = Field(description="DatabaseInstance or DatabaseCluster.")
    name: str = Field(description="Its name.")
    message: str = Field(description="What it breaks, naming the fields (as admission would refuse it).")


class PolicyStatus(ApiModel):
    """What the operator last observed: usage per selected namespace, and the resources that violate
    the policy (reported, never changed; each also gets a Warning Event when first seen)."""

    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the policy this report was computed from."
    )
    namespaces: list[NamespaceUsage] = Field(
        default_factory=list,
        description="Every namespace the policy selects, with its usage.",
        json_schema_extra=list_map("namespace"),
    )
    violators: list[Violator] = Field(
        default_factory=list, description="Existing resources that break the policy."
    )
