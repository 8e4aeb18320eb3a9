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
        ("metrics.serviceMonitor.enabled=true", "grafanaDashboard.enabled=true", "alerts.enabled=true"),
    ],
    ids=["default", "namespaced", "monitoring"],
)
def test_lint_strict(values: tuple[str, ...]) -> None:
    helm("lint", "--strict", str(CHART), *[a for v in values for a in ("--set", v)])


def test_default_render() -> None:
    objs = template()
    kinds = sorted(o["kind"] for o in objs)
    assert kinds.count("CustomResourceDefinition") == len(list((CHART / "crds").glob("*.yaml")))
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
    # admission.enabled is true by default: Ready means the webhook server listens.
    assert container["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    assert {o["kind"] for o in objs if "Webhook" in o["kind"]} == {
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
    off = template("admission.enabled=false")
    (plain,) = one(off, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert plain["readinessProbe"]["httpGet"]["port"] == "health"
    assert not [o for o in off if "Webhook" in o["kind"] or o["metadata"]["name"].endswith("-admission")]
    assert container["resources"]["limits"]["memory"]
    # Cluster-wide mode: the workload rules in a ClusterRole, the Lease in a Role of the release namespace.
    assert one(objs, "ClusterRole", "kt-kubetrove")["rules"]
    lease_role = one(objs, "Role", "kt-kubetrove-leader-election")
    assert lease_role["metadata"]["namespace"] == "kubetrove-system"
    # Only the operator's own Lease can be read or renewed; create cannot be limited by name.
    assert lease_role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["kubetrove-operator"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        # agentTLS (on by default): the agents' CA, read by name, created once.
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["kubetrove-agent-ca"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    assert "ServiceMonitor" not in kinds


def test_admission_objects() -> None:
    objs = template("admission.enabled=true")
    (container,) = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    # Ready = the webhook server listens = the webhook server listens (only the Lease holder serves it).
    assert container["readinessProbe"]["tcpSocket"]["port"] == "webhook"
    assert env["KUBETROVE_ADMISSION_PORT"] == "9443" and env["KUBETROVE_POLICY_REQUIRED"] == "false"
    assert env["KUBETROVE_ADMISSION_HOSTS"].split(",")[0] == "kt-kubetrove-webhook.kubetrove-system.svc"
    for kind, path in (
        ("ValidatingWebhookConfiguration", "/policy"),
        ("MutatingWebhookConfiguration", "/tier"),
    ):
        (hook,) = one(objs, kind, "kt-kubetrove")["webhooks"]
        assert hook["failurePolicy"] == "Fail" and "caBundle" not in hook["clientConfig"]
        assert hook["clientConfig"]["service"] == {
            "name": "kt-kubetrove-webhook", "namespace": "kubetrove-system", "path": path, "port": 443
        }  # fmt: skip
        assert "DELETE" not in hook["rules"][0]["operations"] and "namespaceSelector" not in hook
        operator = "system:serviceaccount:kubetrove-system:kt-kubetrove"
        assert hook["matchConditions"] == [
            {"name": "not-the-operator", "expression": f"request.userInfo.username != '{operator}'"}
        ]
    assert one(objs, "Service", "kt-kubetrove-webhook")["spec"]["ports"][0]["targetPort"] == "webhook"
    objs = template("admission.enabled=true", "watchNamespaces={team-a,team-b}")
    # Admission: cluster-wide reads of policies and namespaces, the policies' status and kopf's annotations
    # on them; of the webhook configurations only its own.
    admission = one(objs, "ClusterRole", "kt-kubetrove-admission")
    writes = [r for r in admission["rules"] if set(r["verbs"]) - {"get", "list", "watch"}]
    assert writes[:2] == [
        {
            "apiGroups": ["kubetrove.io"],
            "resources": ["databasepolicies"],
            "verbs": ["get", "list", "watch", "patch"],
        },
        {"apiGroups": ["kubetrove.io"], "resources": ["databasepolicies/status"], "verbs": ["patch"]},
    ]
    assert writes[2:] == [
        {"apiGroups": ["admissionregistration.k8s.io"], "resourceNames": ["kt-kubetrove"],
         "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
         "verbs": ["get", "update"]}
    ]  # fmt: skip
    (hook,) = one(objs, "ValidatingWebhookConfiguration", "kt-kubetrove")["webhooks"]
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["team-a", "team-b"]


def test_network_policy_setting_reaches_the_operator() -> None:
    def env(objs: list[dict[str, Any]]) -> dict[str, Any]:
        container = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    assert env(template())["KUBETROVE_NETWORK_POLICY"] == "false"
    assert env(template("networkPolicy.enabled=true"))["KUBETROVE_NETWORK_POLICY"] == "true"


def test_the_lease_rule_follows_the_lease_name() -> None:
    objs = template("leaderElection.leaseName=other-lease")
    rules = one(objs, "Role", "kt-kubetrove-leader-election")["rules"]
    (named,) = [r for r in rules if "resourceNames" in r and r["resources"] == ["leases"]]
    assert named["resourceNames"] == ["other-lease"]


def test_agent_tls_setting_reaches_the_operator_and_its_rbac() -> None:
    def env(objs: list[dict[str, Any]]) -> dict[str, Any]:
        container = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    def secret_rules(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rules = one(objs, "Role", "kt-kubetrove-leader-election")["rules"]
        return [r for r in rules if r["resources"] == ["secrets"]]

    on = template("agentTLS.caSecret=our-ca")
    assert (env(on)["KUBETROVE_AGENT_TLS"], env(on)["KUBETROVE_AGENT_CA_SECRET"]) == ("true", "our-ca")
    assert secret_rules(on)[0]["resourceNames"] == ["our-ca"]
    off = template("agentTLS.enabled=false")
    assert env(off)["KUBETROVE_AGENT_TLS"] == "false" and not secret_rules(off)


def test_rendered_workload_rules_grant_no_unused_verb() -> None:
    """The rendered ClusterRole (cluster-wide mode) and Roles (namespaced mode) are the same rules."""
    for objs, kind in ((template(), "ClusterRole"), (template("watchNamespaces={a}"), "Role")):
        rules = one(objs, kind, "kt-kubetrove")["rules"]
        verbs = {r: set(rule["verbs"]) for rule in rules for r in rule["resources"]}
        assert verbs["pods"] == {"list", "patch", "delete"}  # pods get was granted and unused
        assert verbs["secrets"] == {"get", "create", "patch"}  # never list/watch: no enumeration
        assert verbs["configmaps"] == {"get", "create", "patch"}  # a ring's config is read (ring.py)
        assert verbs["poddisruptionbudgets"] == {"create", "patch", "delete"}


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
    objs = template("watchNamespaces={team-a,team-b}", "admission.enabled=false")
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
