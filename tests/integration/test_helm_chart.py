"""The chart through the real Helm: lint, render, schema. (Installing it is tests/e2e/test_helm.py.)

Here rather than in tests/unit: Helm is a Go binary built by `make setup` (hack/build-helm.sh), and
the unit tier runs without setup. In this tier a missing helm FAILS, it is never skipped.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.helm import CHART, ROOT, helm, template

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def one(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("watchNamespaces={a,b}",),
        ("metrics.serviceMonitor.enabled=true", "grafanaDashboard.enabled=true"),
    ],
    ids=["default", "namespaced", "monitoring"],
)
def test_lint_strict(values: tuple[str, ...]) -> None:
    helm("lint", "--strict", str(CHART), *[a for v in values for a in ("--set", v)])


def test_default_render() -> None:
    objs = template()
    kinds = sorted(o["kind"] for o in objs)
    assert kinds.count("CustomResourceDefinition") == 3
    deploy = one(objs, "Deployment")
    spec = deploy["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == RESTRICTED
    # Every image from the one registry `make images` pushes to (tests/e2e/realnode pull and run them).
    assert container["image"] == "127.0.0.1:5000/kubetrove/operator:0.1.0"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KUBETROVE_LEASE_NAMESPACE"] == "kubetrove-system"
    assert env["KUBETROVE_NAMESPACES"] == ""
    assert env["KUBETROVE_IMAGE_REGISTRY"] == "127.0.0.1:5000/kubetrove"
    assert env["KUBETROVE_AGENT_IMAGE"] == "127.0.0.1:5000/kubetrove/agent:0.1.0"
    assert not [name for name in env if name.startswith("KUBETROVE_AGENT_IMAGE_")]
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    assert container["readinessProbe"]["httpGet"]["port"] == "health"
    assert container["resources"]["limits"]["memory"]
    # Cluster-wide mode: the workload rules in a ClusterRole, the Lease in a Role of the release namespace.
    assert one(objs, "ClusterRole", "kt-kubetrove")["rules"]
    lease_role = one(objs, "Role", "kt-kubetrove-leader-election")
    assert lease_role["metadata"]["namespace"] == "kubetrove-system"
    assert "ServiceMonitor" not in kinds


def test_one_registry_setting_moves_every_image() -> None:
    objs = template("imageRegistry=registry.example.com:5443/dbs/", "agent.images.mysql=my.example/agent:1")
    (container,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["image"] == "registry.example.com:5443/dbs/operator:0.1.0"
    assert env["KUBETROVE_IMAGE_REGISTRY"] == "registry.example.com:5443/dbs"
    assert env["KUBETROVE_AGENT_IMAGE"] == "registry.example.com:5443/dbs/agent:0.1.0"
    assert env["KUBETROVE_AGENT_IMAGE_MYSQL"] == "my.example/agent:1"


def test_chart_crds_are_the_generated_crds() -> None:
    import yaml

    objs = template()
    crds = {o["metadata"]["name"]: o for o in objs if o["kind"] == "CustomResourceDefinition"}
    for path in (ROOT / "crds").glob("*.yaml"):
        want = yaml.safe_load(path.read_text())
        assert crds[want["metadata"]["name"]] == want


def test_namespaced_mode_has_no_workload_cluster_role() -> None:
    objs = template("watchNamespaces={team-a,team-b}")
    roles = [o for o in objs if o["kind"] == "Role" and o["metadata"]["name"] == "kt-kubetrove"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    # Cluster-scoped reads only: kopf's observation (CRDs, namespaces) and StorageClasses (the operator
    # checks allowVolumeExpansion before growing a volume). Nothing may be written cluster-wide.
    (observer,) = [o for o in objs if o["kind"] == "ClusterRole"]
    assert observer["metadata"]["name"] == "kt-kubetrove-observer"
    assert {v for r in observer["rules"] for v in r["verbs"]} <= {"get", "list", "watch"}
    assert {r for rule in observer["rules"] for r in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
        "storageclasses",
    }
    env = {
        e["name"]: e.get("value")
        for e in one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["KUBETROVE_NAMESPACES"] == "team-a,team-b"


def test_monitoring_objects() -> None:
    objs = template("metrics.serviceMonitor.enabled=true", "grafanaDashboard.enabled=true")
    monitor = one(objs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    dashboard = one(objs, "ConfigMap")
    assert '"uid": "kubetrove-overview"' in dashboard["data"]["kubetrove.json"]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("image.tag=latest", "/image/tag"),
        ("bogus=1", "bogus"),
        ("metrics.port=0", "/metrics/port"),
        ("imageRegistry=http://r.example", "/imageRegistry"),
        ("agent.images.oracle=x/y:1", "/agent/images"),
    ],
)
def test_schema_refuses_bad_values(value: str, error: str) -> None:
    proc = helm("template", "kt", str(CHART), "--set", value, check=False)
    assert proc.returncode != 0 and error in proc.stderr, proc.stderr
