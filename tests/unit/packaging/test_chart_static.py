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


def allowed(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in workload_rules():
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
    verbs = allowed(group_of(rtype), rtype.plural)
    missing = kind_constants_used()[name] - verbs
    assert verbs, f"{rtype.kind} is used by the operator but templates/rbac.yaml has no rule for it"
    assert not missing, f"{rtype.kind}: verbs {sorted(missing)} are used but not granted"


def test_custom_resources_and_their_status_are_covered() -> None:
    for rtype in kinds.CUSTOM.values():
        assert {"get", "list", "watch", "patch"} <= allowed("kubetrove.io", rtype.plural), rtype.kind
        assert "patch" in allowed("kubetrove.io", f"{rtype.plural}/status"), rtype.kind


def test_leases_only_in_the_release_namespace() -> None:
    assert not allowed(group_of(kinds.LEASE), kinds.LEASE.plural), "leases must not be granted cluster-wide"
    assert re.search(r"resources: \[leases\]\n\s+verbs: \[get, create, update\]", RBAC)


def test_secrets_cannot_be_enumerated() -> None:
    # Secrets are read by name only: list/watch would expose every Secret in the watched namespaces.
    assert allowed("", "secrets") == {"get", "create", "patch"}


def test_no_wildcards() -> None:
    for rule in workload_rules():
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
