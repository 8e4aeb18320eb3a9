"""DatabasePolicy decisions (kubetrove.policy): every rule refused with a message naming the policy and
the field; how several policies combine; updates of existing violators; quotas; namespace_offer agrees
with decide (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kubetrove.api.common import Engine
from kubetrove.api.database_policy import PolicySpec, Tier
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.policy.decide import BACKUP, CLUSTER, INSTANCE, NamedPolicy, Review, decide, fmt_bytes, fmt_cpu
from kubetrove.policy.offer import catalog, namespace_offer, remaining
from kubetrove.policy.selector import selects
from kubetrove.policy.usage import Usage, of_backup, of_database, total

PROD = {"environment": "prod"}
DEV = {"environment": "dev"}


def policy(name: str, **spec: Any) -> NamedPolicy:
    spec.setdefault("namespaceSelector", {})
    return NamedPolicy(name, PolicySpec.model_validate(spec))


def cluster(**over: Any) -> ClusterSpec:
    spec: dict[str, Any] = {"datastore": {"type": "mariadb", "version": "10.11"}, "replicas": 3}
    spec.update(over)
    return ClusterSpec.model_validate(spec)


def instance(**over: Any) -> InstanceSpec:
    spec: dict[str, Any] = {"datastore": {"type": "postgresql", "version": "17"}}
    spec.update(over)
    return InstanceSpec.model_validate(spec)


def review(spec: InstanceSpec, labels: dict[str, str] = PROD, **kw: Any) -> Review:
    kind = CLUSTER if isinstance(spec, ClusterSpec) else INSTANCE
    return Review(namespace="payments", namespace_labels=labels, kind=kind, name="db", new=spec, **kw)


PROD_RULES = policy(
    "prod-rules",
    namespaceSelector={"matchLabels": PROD},
    engines=[{"type": "mariadb", "versions": ["10.11"]}, {"type": "postgresql", "versions": ["17"]}],
)


def test_engine_not_allowed_names_policy_field_and_what_is_allowed() -> None:
    d = decide([PROD_RULES], review(cluster(datastore={"type": "mongodb", "version": "8.0"})))
    assert not d.allowed
    assert d.message() == (
        "DatabasePolicy prod-rules: spec.datastore.type: engine mongodb is not allowed in namespace "
        "payments (allowed: mariadb 10.11; postgresql 17)"
    )


def test_version_not_allowed_names_the_version_field() -> None:
    d = decide([PROD_RULES], review(cluster(datastore={"type": "mariadb", "version": "11.4"})))
    assert [v.field for v in d.violations] == ["spec.datastore.version"]
    assert "mariadb 11.4 is not allowed in namespace payments (allowed: mariadb 10.11)" in d.message()


def test_allowed_and_unselected_namespaces() -> None:
    assert decide([PROD_RULES], review(cluster())).allowed
    mongo = cluster(datastore={"type": "mongodb", "version": "8.0"})
    d = decide([PROD_RULES], review(mongo, labels=DEV))
    assert d.allowed and d.policies == () and d.tier is None  # no policy selects dev: as without policies


def test_no_policy_with_policy_required_refuses() -> None:
    d = decide([PROD_RULES], review(cluster(), labels=DEV), require_policy=True)
    assert not d.allowed
    assert "no DatabasePolicy selects namespace payments" in d.message()
    assert "policy.required" in d.message()


def test_evaluation_tier() -> None:
    dev = policy(
        "dev-rules",
        namespaceSelector={"matchLabels": DEV},
        engines=[{"type": "mariadb"}, {"type": "mongodb", "tier": "evaluation"}],
    )
    mongo = cluster(datastore={"type": "mongodb", "version": "8.0"})
    d = decide([dev, PROD_RULES], review(mongo, labels=DEV))
    assert d.allowed and d.tier == Tier.EVALUATION and d.policies == ("dev-rules",)
    assert decide([dev], review(cluster(), labels=DEV)).tier == Tier.SUPPORTED
    assert not decide([dev, PROD_RULES], review(mongo)).allowed  # evaluation in dev only


def test_two_policies_the_strictest_wins_and_each_refusal_is_named() -> None:
    base = policy("base", limits={"maxStorage": "100Gi"}, quotas={"clusters": 5})
    prod = policy("prod", namespaceSelector={"matchLabels": PROD}, limits={"maxStorage": "20Gi"})
    big = cluster(storage={"size": "50Gi"})
    d = decide([base, prod], review(big))
    assert [(v.policy, v.field) for v in d.violations] == [("prod", "spec.storage.size")]
    assert "DatabasePolicy prod: spec.storage.size: 50Gi is over the limit of 20Gi" in d.message()
    huge = cluster(storage={"size": "200Gi"})
    assert {v.policy for v in decide([base, prod], review(huge)).violations} == {"base", "prod"}
    assert decide([base, prod], review(big, labels=DEV)).allowed  # only base selects dev
    # Engines: the intersection; tier: evaluation if either says so.
    a = policy("a", engines=[{"type": "mariadb"}, {"type": "postgresql", "tier": "evaluation"}])
    b = policy("b", engines=[{"type": "postgresql"}, {"type": "mongodb"}])
    assert not decide([a, b], review(cluster())).allowed  # mariadb: b refuses
    d = decide([a, b], review(instance()))
    assert d.allowed and d.tier == Tier.EVALUATION


@pytest.mark.parametrize(
    ("spec", "fields"),
    [
        (cluster(replicas=7), ["spec.replicas"]),
        (cluster(storage={"size": "11Gi"}), ["spec.storage.size"]),
        (cluster(resources={"requests": {"cpu": "3"}}), ["spec.resources.requests.cpu"]),
        (cluster(resources={"limits": {"memory": "9Gi"}}), ["spec.resources.limits.memory"]),
        (
            cluster(
                replicas=5, storage={"size": "10Gi"}, resources={"requests": {"cpu": "2", "memory": "8Gi"}}
            ),
            [],
        ),
    ],
    ids=["replicas", "storage", "cpu", "memory", "at-the-limits"],
)
def test_limits(spec: ClusterSpec, fields: list[str]) -> None:
    p = policy("caps", limits={"maxReplicas": 5, "maxStorage": "10Gi", "maxCpu": "2", "maxMemory": "8Gi"})
    assert [v.field for v in decide([p], review(spec)).violations] == fields


PROD_REQUIRED = policy(
    "prod-required",
    required={
        "minReplicas": 3,
        "scheduledBackups": True,
        "verifiedBackups": True,
        "retainVolumes": True,
        "automaticFailover": True,
    },
)
COMPLIANT = {
    "backup": {"schedule": "0 3 * * *", "verify": True, "storage": {"pvc": {"claimName": "backups"}}},
}


def test_required_settings_each_named() -> None:
    assert decide([PROD_REQUIRED], review(cluster(**COMPLIANT))).allowed
    bad = cluster(replicas=2, failover={"automatic": False}, deletionPolicy={"volumes": "Delete"})
    fields = [v.field for v in decide([PROD_REQUIRED], review(bad)).violations]
    assert fields == [
        "spec.replicas",
        "spec.backup.schedule",
        "spec.backup.verify",
        "spec.deletionPolicy.volumes",
        "spec.failover.automatic",
    ]
    d = decide([PROD_REQUIRED], review(instance(**COMPLIANT)))
    assert [v.field for v in d.violations] == ["kind"]
    assert "create a DatabaseCluster with spec.replicas >= 3" in d.message()


def test_quotas_counts_and_amounts() -> None:
    q = policy("quota", quotas={"clusters": 2, "instances": 1, "storage": "30Gi", "backups": 10})
    others = total([of_database(cluster(replicas=1, storage={"size": "5Gi"}))])
    assert decide([q], review(cluster(), others=others)).allowed  # 5Gi + 3 x 1Gi
    two = others + others
    d = decide([q], review(cluster(), others=two))
    assert [v.rule for v in d.violations] == ["quotas.clusters"]
    assert "namespace payments would have 3 DatabaseClusters, over its quota of 2" in d.message()
    d = decide([q], review(cluster(storage={"size": "9Gi"}), others=others))
    assert "would use 32Gi of storage, over its quota of 30Gi" in d.message()
    keep = cluster(backup={"schedule": "@daily", "keep": 11})
    assert [v.rule for v in decide([q], review(keep)).violations] == ["quotas.backups"]


def test_a_cpu_quota_needs_cpu_stated() -> None:
    q = policy("quota", quotas={"cpu": "4", "memory": "8Gi"})
    d = decide([q], review(cluster()))
    assert [v.field for v in d.violations] == [
        "spec.resources.requests.cpu",
        "spec.resources.requests.memory",
    ]
    stated = cluster(resources={"requests": {"cpu": "1", "memory": "2Gi"}})
    assert decide([q], review(stated)).allowed  # 3 members x 1 CPU, 3 x 2Gi
    d = decide([q], review(cluster(resources={"limits": {"cpu": "2", "memory": "1Gi"}})))
    assert "would use 6 of cpu, over its quota of 4" in d.message()  # a limit alone counts


def test_manual_backups_count_scheduled_do_not() -> None:
    q = policy("quota", quotas={"backups": 3})
    full = Usage(backups=3)
    d = decide([q], Review("ns", {}, BACKUP, "b", None, others=full, new_usage=of_backup({})))
    assert not d.allowed and "over its quota of 3" in d.message()
    scheduled = of_backup({"kubetrove.io/scheduled-by": "db"})
    assert decide([q], Review("ns", {}, BACKUP, "b", None, others=full, new_usage=scheduled)).allowed


def test_updates_refuse_only_what_gets_worse() -> None:
    p = policy(
        "p",
        engines=[{"type": "mariadb", "versions": ["10.11"]}],
        limits={"maxStorage": "20Gi"},
        quotas={"storage": "150Gi"},
    )
    old = cluster(datastore={"type": "mariadb", "version": "11.4"}, storage={"size": "30Gi"})
    # An existing violator (created before the policy) changed in another field: allowed.
    same = cluster(datastore={"type": "mariadb", "version": "11.4"}, storage={"size": "30Gi"}, replicas=2)
    assert decide([p], review(same, old=old)).allowed
    assert decide([p], review(old.model_copy(), old=old)).allowed
    # Growing the volume further, or switching to another version not allowed: refused.
    grown = cluster(datastore={"type": "mariadb", "version": "11.4"}, storage={"size": "40Gi"})
    assert [v.field for v in decide([p], review(grown, old=old)).violations] == ["spec.storage.size"]
    other = cluster(datastore={"type": "mariadb", "version": "11.8"}, storage={"size": "30Gi"})
    assert [v.field for v in decide([p], review(other, old=old)).violations] == ["spec.datastore.version"]
    # Same size written differently is not a change.
    same_size = cluster(datastore={"type": "mariadb", "version": "11.4"}, storage={"size": "30720Mi"})
    assert decide([p], review(same_size, old=old)).allowed
    # Growing within the limit but past the namespace quota: refused; shrinking usage never is.
    ok = cluster(storage={"size": "20Gi"})
    full = Usage(storage=of_database(cluster(storage={"size": "40Gi"})).storage)  # 120Gi elsewhere
    assert decide([p], review(ok, old=ok, others=full)).allowed  # over quota already, not growing
    more = cluster(storage={"size": "20Gi"}, replicas=4)
    assert [v.rule for v in decide([p], review(more, old=ok, others=full)).violations] == ["quotas.storage"]


def test_selector_semantics() -> None:
    sel = PolicySpec.model_validate(
        {
            "namespaceSelector": {
                "matchLabels": {"team": "a"},
                "matchExpressions": [
                    {"key": "environment", "operator": "In", "values": ["prod", "staging"]},
                    {"key": "frozen", "operator": "DoesNotExist"},
                    {"key": "tier", "operator": "NotIn", "values": ["legacy"]},
                ],
            }
        }
    ).namespace_selector
    assert selects(sel, {"team": "a", "environment": "prod"})
    assert not selects(sel, {"team": "a", "environment": "dev"})
    assert not selects(sel, {"team": "a", "environment": "prod", "frozen": ""})
    assert not selects(sel, {"team": "a", "environment": "prod", "tier": "legacy"})
    assert not selects(sel, {"environment": "prod"})
    empty = PolicySpec.model_validate({"namespaceSelector": {}}).namespace_selector
    assert selects(empty, {}) and selects(empty, {"x": "y"})
    for bad in ({"key": "a", "operator": "In"}, {"key": "a", "operator": "Exists", "values": ["x"]}):
        with pytest.raises(ValidationError, match="values must be non-empty for In and NotIn"):
            PolicySpec.model_validate({"namespaceSelector": {"matchExpressions": [bad]}})


def test_formatting() -> None:
    from fractions import Fraction

    assert [fmt_bytes(Fraction(v)) for v in (10 * 2**30, 1536 * 2**20, 100, 0)] == [
        "10Gi",
        "1536Mi",
        "100",
        "0",
    ]
    assert [fmt_cpu(Fraction(v)) for v in (2, Fraction(3, 2), Fraction(1, 4))] == ["2", "1500m", "250m"]


def test_namespace_offer_for_the_cli_and_console() -> None:
    dev = policy(
        "dev-rules",
        namespaceSelector={"matchLabels": DEV},
        engines=[{"type": "mysql", "versions": ["9.7"]}, {"type": "mongodb", "tier": "evaluation"}],
        limits={"maxStorage": "50Gi"},
        quotas={"clusters": 3},
    )
    base = policy("base", limits={"maxStorage": "20Gi", "maxReplicas": 5}, required={"retainVolumes": True})
    offer = namespace_offer([dev, base], "team-dev", DEV)
    assert offer.policies == ("base", "dev-rules")
    got = {(str(v.engine), v.version, str(v.tier)) for v in offer.versions}
    assert got == {("mysql", "9.7", "supported")} | {
        ("mongodb", v, "evaluation") for v in catalog()[Engine.MONGODB]
    }
    assert offer.limits == {"maxReplicas": 5, "maxStorage": "20Gi"}
    assert offer.quotas == {"clusters": 3} and offer.required == {"retainVolumes": True}
    assert remaining(offer, Usage(clusters=1)) == {"clusters": 2}
    wire = offer.to_wire()
    assert wire["versions"][0].keys() == {"engine", "version", "tier"}
    everything = namespace_offer([], "other", {})
    assert len(everything.versions) == sum(len(v) for v in catalog().values())
    refused = namespace_offer([], "other", {}, require_policy=True)
    assert refused.versions == () and "no DatabasePolicy selects namespace other" in refused.refused


# --- properties -------------------------------------------------------------------------------------

ENGINES = sorted(catalog())
rules = st.lists(
    st.builds(
        lambda e, some, tier, picks: {
            "type": str(e),
            "versions": sorted({catalog()[e][i % len(catalog()[e])] for i in picks}) if some else [],
            "tier": tier,
        },
        st.sampled_from(ENGINES),
        st.booleans(),
        st.sampled_from(["supported", "evaluation"]),
        st.lists(st.integers(0, 5), min_size=1, max_size=3),
    ),
    max_size=4,
)
policies = st.lists(
    st.builds(
        lambda i, rs, restrict, env: policy(
            f"p{i}",
            namespaceSelector={"matchLabels": {"environment": env}} if env else {},
            **({"engines": rs} if restrict else {}),
        ),
        st.integers(0, 9),
        rules,
        st.booleans(),
        st.sampled_from(["", "prod", "dev"]),
    ),
    max_size=3,
    unique_by=lambda p: p.name,
)


@settings(max_examples=200, deadline=None)
@given(policies, st.sampled_from([PROD, DEV, {}]))
def test_offer_agrees_with_decide(chosen: list[NamedPolicy], labels: dict[str, str]) -> None:
    """A catalog version is offered at tier T exactly when a create of it is admitted at tier T."""
    offer = {(v.engine, v.version): v.tier for v in namespace_offer(chosen, "ns", labels).versions}
    for engine, versions in catalog().items():
        for version in versions:
            spec = cluster(datastore={"type": str(engine), "version": version})
            d = decide(chosen, review(spec, labels=labels))
            assert d.allowed == ((engine, version) in offer)
            if d.allowed and d.tier is not None:
                assert offer[(engine, version)] == d.tier


sizes = st.integers(1, 64).map(lambda g: f"{g}Gi")


def _spec(cl: bool, n: int, size: str, cpu: str) -> InstanceSpec:
    over = {"storage": {"size": size}, "resources": {"requests": {"cpu": cpu}}}
    return cluster(replicas=n, **over) if cl else instance(**over)


specs = st.builds(_spec, st.booleans(), st.integers(1, 7), sizes, st.sampled_from(["250m", "1", "2"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(specs, max_size=6), specs, st.integers(1, 400))
def test_a_quota_is_never_exceeded_by_an_admitted_create(existing: list[InstanceSpec], new: InstanceSpec,
                                                         quota_gi: int) -> None:  # fmt: skip
    q = policy("q", quotas={"storage": f"{quota_gi}Gi", "clusters": 3, "instances": 2, "cpu": "8"})
    others = total([of_database(s) for s in existing])
    d = decide([q], review(new, others=others))
    after = others + of_database(new)
    over = after.storage > quota_gi * 2**30 or after.clusters > 3 or after.instances > 2 or after.cpu > 8
    assert d.allowed == (not over)
    assert after.storage == sum((of_database(s).storage for s in [*existing, new]), start=0)


def test_the_documented_example_decides_as_docs_policy_md_says() -> None:
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[3] / "examples" / "policies.yaml"
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    chosen = [NamedPolicy(d["metadata"]["name"], PolicySpec.model_validate(d["spec"])) for d in docs]
    mongo = cluster(datastore={"type": "mongodb", "version": "6.0"})
    d = decide(chosen, review(mongo, labels=DEV))
    assert d.allowed and d.tier == Tier.EVALUATION and d.policies == ("baseline", "dev-rules")
    d = decide(chosen, review(cluster(replicas=1, storage={"size": "50Gi"}), labels=DEV))
    assert [v.policy for v in d.violations] == ["dev-rules"]
    d = decide(chosen, review(mongo))
    assert "DatabasePolicy supported-stack: spec.datastore.type: engine mongodb" in d.message()
    assert {v.field for v in decide(chosen, review(cluster())).violations} == {
        "spec.backup.schedule",
        "spec.backup.verify",
        "spec.resources.requests.cpu",
        "spec.resources.requests.memory",
    }
    prod_ok = cluster(resources={"requests": {"cpu": "1", "memory": "2Gi"}}, **COMPLIANT)
    d = decide(chosen, review(prod_ok))
    assert d.allowed and d.tier == Tier.SUPPORTED
    assert namespace_offer(chosen, "payments", {"environment": "test"}).policies == (
        "baseline",
        "supported-stack",
    )


def test_autogrow_maximum_is_held_to_max_storage() -> None:
    """Autogrow grows the volumes with no request the webhook sees: its maximum is what a member may take,
    so a spec within maxStorage whose maximum is not (1Gi growing to 1Ei) is refused on the maximum."""
    p = policy("caps", limits={"maxStorage": "10Gi"})
    sneaky = cluster(storage={"size": "1Gi", "autogrow": {"maximum": "1Ei"}})
    d = decide([p], review(sneaky))
    assert [(v.field, v.rule) for v in d.violations] == [
        ("spec.storage.autogrow.maximum", "limits.maxStorage")
    ]
    assert "DatabasePolicy caps: spec.storage.autogrow.maximum: 1Ei is over the limit of 10Gi" in d.message()
    assert decide([p], review(cluster(storage={"size": "1Gi", "autogrow": {"maximum": "10Gi"}}))).allowed


def test_autogrow_maximum_counts_against_the_storage_quota() -> None:
    q = policy("quota", quotas={"storage": "30Gi"})
    assert (
        of_database(cluster(storage={"size": "1Gi", "autogrow": {"maximum": "10Gi"}})).storage == 30 * 2**30
    )
    assert of_database(cluster(storage={"size": "5Gi"})).storage == 15 * 2**30
    assert decide([q], review(cluster(storage={"size": "1Gi", "autogrow": {"maximum": "10Gi"}}))).allowed
    d = decide([q], review(cluster(storage={"size": "1Gi", "autogrow": {"maximum": "11Gi"}})))
    assert [v.field for v in d.violations] == ["quotas.storage (spec.storage.autogrow.maximum)"]
    assert "would use 33Gi of storage, over its quota of 30Gi" in d.message()
    # turning autogrow on for a resource that exists grows its usage: reviewed like any growth
    before = cluster(storage={"size": "10Gi"})
    after = cluster(storage={"size": "10Gi", "autogrow": {"maximum": "20Gi"}})
    assert not decide([q], review(after, old=before)).allowed
