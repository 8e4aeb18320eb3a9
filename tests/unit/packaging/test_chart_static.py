"""The Helm chart, checked without Helm: its CRDs, its version, and that its RBAC covers the operator's calls.

``helm lint``/``helm template`` run in tests/integration/test_helm_chart.py (Helm is built by ``make
setup``), and tests/e2e/test_helm.py proves the RBAC is *sufficient* by running the operator on the
chart's ServiceAccount token. This file keeps the rules in step with the code on every unit run:
every Kubernetes kind the operator's code reads or writes, with each verb its calls imply, has a rule.
"""

from __future__ import annotations

import ast
import functools
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from kubetrove.k8s import kinds

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kubetrove"
SOURCE = ROOT / "operator" / "kubetrove"
RBAC = (CHART / "templates" / "rbac.yaml").read_text()

# kubetrove.k8s.port.Kube method -> the RBAC verb it needs.
VERBS = {"get": "get", "list": "list", "patch": "patch", "delete": "delete"}


@functools.cache
def workload_rules() -> list[dict[str, list[str]]]:
    """The rules of the ``kubetrove.workloadRules`` template: plain YAML between define and end."""
    m = re.search(r'define "kubetrove\.workloadRules" -}}\n(.*?)\{\{- end -}}', RBAC, re.S)
    assert m, "templates/rbac.yaml has no kubetrove.workloadRules block"
    rules = yaml.safe_load(m.group(1))
    assert isinstance(rules, list)
    return rules


@functools.cache
def admission_rules() -> list[dict[str, list[str]]]:
    """The rules of the admission ClusterRole (admission.enabled), template lines dropped."""
    m = re.search(r"name: \{\{ \$fullname \}\}-admission\n.*?rules:\n(.*?)\n---", RBAC, re.S)
    assert m, "templates/rbac.yaml has no admission ClusterRole"
    text = re.sub(r"^\s*\{\{-? (if|end)\b.*\}\}\s*\n", "", m.group(1), flags=re.M)
    rules = yaml.safe_load(text.replace("{{ $fullname }}", "kt-kubetrove"))
    assert isinstance(rules, list)
    return rules


def allowed(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in workload_rules() + admission_rules():
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def group_of(rtype: kinds.ResourceType) -> str:
    return rtype.api_version.rpartition("/")[0]


@functools.cache
def kind_constants_used() -> dict[str, set[str]]:
    """{kinds constant name: Kube methods called with it} over the operator's code (kinds.py excluded)."""
    constants = {n for n, v in vars(kinds).items() if isinstance(v, kinds.ResourceType)}
    used: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        if path == SOURCE / "k8s" / "kinds.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "kubetrove.k8s.kinds":
                for alias in node.names:
                    if alias.name in constants:
                        used.setdefault(alias.name, set())
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                first = node.args[0]
                if isinstance(first, ast.Name) and first.id in constants and node.func.attr in VERBS:
                    used.setdefault(first.id, set()).add(VERBS[node.func.attr])
    return used


def test_chart_crds_are_identical_to_crds() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").glob("*.yaml")}
    assert top, "crds/ is empty"
    assert chart == top, "charts/kubetrove/crds/ differs from crds/: run `make crds`"


def test_chart_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["version"] == project["version"]


def test_the_operator_code_was_scanned() -> None:
    # Guards the scan itself: these calls exist today (rollout deletes pods, storage reads PVCs).
    used = kind_constants_used()
    assert "delete" in used["POD"] and "get" in used["PVC"], used


@pytest.mark.parametrize("name", sorted(kind_constants_used()))
def test_every_kind_the_operator_touches_has_its_verbs(name: str) -> None:
    rtype = getattr(kinds, name)
    if rtype is kinds.LEASE:  # its own Role in the release namespace, checked below
        return
    if rtype is kinds.SELF_SUBJECT_REVIEW:  # every authenticated user may (the default system:basic-user)
        return
    verbs = allowed(group_of(rtype), rtype.plural)
    missing = kind_constants_used()[name] - verbs
    assert verbs, f"{rtype.kind} is used by the operator but templates/rbac.yaml has no rule for it"
    assert not missing, f"{rtype.kind}: verbs {sorted(missing)} are used but not granted"


def test_custom_resources_and_their_status_are_covered() -> None:
    for rtype in (t for t in kinds.CUSTOM.values() if t.namespaced):  # DatabasePolicy: cluster-scoped
        assert {"get", "list", "watch", "patch"} <= allowed("kubetrove.io", rtype.plural), rtype.kind
        assert "patch" in allowed("kubetrove.io", f"{rtype.plural}/status"), rtype.kind


def test_admission_reads_policies_and_writes_only_its_own_webhook_configurations() -> None:
    assert allowed("kubetrove.io", "databasepolicies") == {"get", "list", "watch", "patch"}
    assert allowed("kubetrove.io", "databasepolicies/status") == {"patch"}
    assert allowed("", "namespaces") == {"get", "list"}
    hooks = [r for r in admission_rules() if r["apiGroups"] == ["admissionregistration.k8s.io"]]
    assert hooks == [
        {"apiGroups": ["admissionregistration.k8s.io"], "resourceNames": ["kt-kubetrove"],
         "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
         "verbs": ["get", "update"]}
    ]  # fmt: skip


def test_leases_only_in_the_release_namespace() -> None:
    assert not allowed(group_of(kinds.LEASE), kinds.LEASE.plural), "leases must not be granted cluster-wide"
    # get/update on the operator's own Lease only; create cannot be limited by name (RBAC).
    assert re.search(
        r"resources: \[leases\]\n\s+resourceNames: \[\{\{ \.Values\.leaderElection\.leaseName \| quote \}\}\]"
        r"\n\s+verbs: \[get, update\]",
        RBAC,
    )
    assert re.search(r"resources: \[leases\]\n\s+verbs: \[create\]", RBAC)


# Every workload rule, exactly: a verb the code does not call is a defect (the security review found
# pods get granted and unused). Beyond kind_constants_used(): kopf watches (list, watch) the custom
# resources and StatefulSets; server-side apply (Kube.apply, kind from the manifest) needs create + patch
# on every rendered kind; verification and schedules create custom resources.
EXACT = {
    ("kubetrove.io", "databaseinstances"): {"get", "list", "watch", "patch", "create", "delete"},
    ("kubetrove.io", "databasebackups"): {"get", "list", "watch", "patch", "create", "delete"},
    ("kubetrove.io", "databaseclusters"): {"get", "list", "watch", "patch", "create", "delete"},
    ("apps", "statefulsets"): {"get", "list", "watch", "create", "patch"},
    ("", "services"): {"get", "create", "patch"},
    ("", "configmaps"): {"get", "create", "patch"},
    ("", "secrets"): {"get", "create", "patch"},
    ("", "pods"): {"list", "patch", "delete"},
    ("", "persistentvolumeclaims"): {"get", "list", "patch", "delete"},
    ("storage.k8s.io", "storageclasses"): {"get"},
    ("policy", "poddisruptionbudgets"): {"create", "patch", "delete"},
    ("networking.k8s.io", "networkpolicies"): {"create", "patch", "delete"},
    ("", "events"): {"create"},
    ("events.k8s.io", "events"): {"create"},
}


@pytest.mark.parametrize(("group", "resource"), sorted(EXACT))
def test_every_rule_grants_exactly_what_is_used(group: str, resource: str) -> None:
    assert allowed(group, resource) == EXACT[group, resource]


def test_secrets_cannot_be_enumerated() -> None:
    # Secrets are read by name only: list/watch would expose every Secret in the watched namespaces.
    assert allowed("", "secrets") == {"get", "create", "patch"}


def test_no_wildcards() -> None:
    for rule in workload_rules():
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule


def test_no_rule_outside_the_exact_list() -> None:
    granted = {
        (group, resource)
        for rule in workload_rules()
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        if "/" not in resource  # status and finalizers subresources: covered by their own tests
    }
    assert granted == set(EXACT)
