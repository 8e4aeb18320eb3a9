"""DatabasePolicy at admission, on the real kube-apiserver: the operator's validating and mutating webhooks
(kopf, HTTPS with the certificate the operator made, its CA written into the configurations by the
operator), called by the API server for kubectl as a plain user.

One operator process serves the webhooks for the whole module (it watches no namespace of this
session: the session's own operator, if running, reconciles as usual). Its webhook configurations are
scoped to this module's namespaces (a label), and its policies select only those namespaces, so other
tests sharing the cluster are not affected. Requests are made as the user ``alice`` (impersonated, with
RBAC on our kinds only): the operator's own identity is exempt from review.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import localcluster as lc
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import SESSION_PREFIX, LocalCluster, wait_until

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "kubetrove.io", "v1alpha1"
PLURAL = {"DatabaseInstance": "databaseinstances", "DatabaseCluster": "databaseclusters"}
USER = "alice"
TAG = uuid.uuid4().hex[:8]
SCOPE = {"kubetrove.io/e2e-policy": TAG}  # on this module's namespaces; webhooks and policies select it
HOOK = f"kubetrove-e2e-policy-{TAG}"
RULES = [
    {
        "apiGroups": [GROUP],
        "apiVersions": [VERSION],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["databaseinstances", "databaseclusters", "databasebackups"],
        "scope": "Namespaced",
    }
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_configurations(port: int) -> list[dict[str, Any]]:
    """What the chart installs (templates/webhook.yaml), pointing at a URL instead of a Service: the
    operator runs on the host here. No caBundle: the operator writes it."""
    common = {
        "admissionReviewVersions": ["v1"],
        "failurePolicy": "Fail",
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": 10,
        "namespaceSelector": {"matchLabels": SCOPE},
    }
    validating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": HOOK},
        "webhooks": [
            {"name": "policy.kubetrove.io", "clientConfig": {"url": f"https://127.0.0.1:{port}/policy"},
             "rules": RULES, **common}
        ],
    }  # fmt: skip
    mutating = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": HOOK},
        "webhooks": [
            {"name": "tier.kubetrove.io", "clientConfig": {"url": f"https://127.0.0.1:{port}/tier"},
             "rules": [{**RULES[0], "resources": ["databaseinstances", "databaseclusters"]}],
             "reinvocationPolicy": "Never", **common}
        ],
    }  # fmt: skip
    return [validating, mutating]


class AdmissionOperator:
    """The operator process with admission enabled (and no namespace to reconcile)."""

    def __init__(self, cluster: LocalCluster, log: Path, port: int) -> None:
        self.cluster, self.log_path, self.port = cluster, log, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, policy_required: bool = False) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "operator"),
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "KUBETROVE_LEASE_NAME": HOOK,
            "KUBETROVE_LEASE_NAMESPACE": "default",
            "KUBETROVE_NAMESPACES": f"kt-none-{TAG}",  # reconcile nothing: the session's operator does
            "KUBETROVE_METRICS_PORT": "0",
            "KUBETROVE_HEALTH_PORT": "0",
            "KUBETROVE_ADMISSION_PORT": str(self.port),
            "KUBETROVE_ADMISSION_HOSTS": "127.0.0.1",
            "KUBETROVE_VALIDATING_WEBHOOK": HOOK,
            "KUBETROVE_MUTATING_WEBHOOK": HOOK,
            "KUBETROVE_POLICY_REQUIRED": str(policy_required).lower(),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "kubetrove.handlers.main"], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def kubectl_as(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    """kubectl as the user alice (impersonated by the admin); raises ClusterError with the server's reply."""
    return cluster.kubectl(f"--as={USER}", *args, stdin=stdin)


def create(cluster: LocalCluster, body: dict[str, Any]) -> str:
    return kubectl_as(cluster, "create", "-f", "-", stdin=yaml.safe_dump(body))


def refused(cluster: LocalCluster, body: dict[str, Any], verb: str = "create") -> str:
    """The refusal message of creating (or applying) ``body``; fails if it was admitted."""
    with pytest.raises(lc.ClusterError) as info:
        kubectl_as(cluster, verb, "-f", "-", stdin=yaml.safe_dump(body))
    text = str(info.value)
    assert 'admission webhook "policy.kubetrove.io" denied the request' in text, text
    return text


def database(
    kind: str, name: str, ns: str, engine: str = "mariadb", version: str = "10.11", **spec: Any
) -> dict:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": ns},
        "spec": {"datastore": {"type": engine, "version": version}, "storage": {"size": "1Gi"}, **spec},
    }
    if kind == "DatabaseCluster":
        body["spec"].setdefault("replicas", 3)
    return body


def get(api: client.ApiClient, kind: str, ns: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL[kind], name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def apply_policy(cluster: LocalCluster, name: str, spec: dict[str, Any]) -> None:
    """A DatabasePolicy selecting this module's namespaces (plus ``spec``'s own selector labels)."""
    spec = json.loads(json.dumps(spec))
    selector = spec.setdefault("namespaceSelector", {})
    selector["matchLabels"] = {**selector.get("matchLabels", {}), **SCOPE}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DatabasePolicy",
            "metadata": {"name": f"{name}-{TAG}"}, "spec": spec}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


def policy_name(name: str) -> str:
    return f"{name}-{TAG}"


@pytest.fixture(scope="module")
def admission(
    local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdmissionOperator]:
    """CRDs, alice's RBAC, the webhook configurations, and the operator serving them."""
    cluster = local_cluster
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                    "crd/databasepolicies.kubetrove.io")  # fmt: skip
    rbac = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": HOOK},
         "rules": [{"apiGroups": [GROUP], "verbs": ["*"],
                    "resources": ["databaseinstances", "databaseclusters", "databasebackups"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": HOOK},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": HOOK},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]},
    ]  # fmt: skip
    port = _free_port()
    docs = [*rbac, *webhook_configurations(port)]
    cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    op = AdmissionOperator(cluster, tmp_path_factory.mktemp("admission") / "operator.log", port)
    op.start()
    try:
        wait_until(
            lambda: "Admission webhook on port" in op.log() or op.proc.poll() is not None, "the webhook"
        )
        assert op.proc.poll() is None, op.log()
        yield op
    finally:
        op.stop()
        print(f"\nadmission operator log: {op.log_path}")
        for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ClusterRole",
                     "ClusterRoleBinding"):  # fmt: skip
            cluster.kubectl("delete", kind, HOOK, "--ignore-not-found")
        cluster.kubectl("delete", "databasepolicies.kubetrove.io", "--ignore-not-found",
                        *[policy_name(n) for n in POLICIES])  # fmt: skip


POLICIES = ("prod", "base", "dev", "quota", "tight")


@pytest.fixture(scope="module")
def spaces(local_cluster: LocalCluster, admission: AdmissionOperator) -> Iterator[Callable[..., str]]:
    """make(name, **labels): a namespace of this session with SCOPE and ``labels``; all deleted after."""
    core = client.CoreV1Api(local_cluster.api)
    made: list[str] = []

    def make(name: str, **labels: str) -> str:
        ns = f"{SESSION_PREFIX}pol-{name}-{TAG}"[:63]
        core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={**SCOPE, **labels}))
        )
        made.append(ns)
        return ns

    yield make
    for ns in made:
        core.delete_namespace(ns)


def until_serving(cluster: LocalCluster, ns: str) -> None:
    """Wait until the API server reaches the webhook (a dry-run create gets an answer from it)."""

    def answered() -> bool:
        body = database("DatabaseInstance", "probe", ns)
        try:
            kubectl_as(cluster, "create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(body))
        except lc.ClusterError as exc:
            return "failed calling webhook" not in str(exc)
        return True

    wait_until(answered, "the API server to reach the webhook")


def test_engines_versions_limits_and_updates(local_cluster: LocalCluster, spaces: Callable[..., str]) -> None:
    cluster, api = local_cluster, local_cluster.api
    prod = spaces("prod", environment="prod")
    dev = spaces("dev", environment="dev")
    apply_policy(cluster, "prod", {
        "namespaceSelector": {"matchLabels": {"environment": "prod"}},
        "engines": [{"type": "mariadb", "versions": ["10.11"]}, {"type": "postgresql", "versions": ["17"]}],
        "limits": {"maxStorage": "5Gi", "maxReplicas": 3},
    })  # fmt: skip
    until_serving(cluster, prod)

    mongo = database("DatabaseCluster", "docs", prod, "mongodb", "8.0")
    message = refused(cluster, mongo)
    assert (
        f"DatabasePolicy {policy_name('prod')}: spec.datastore.type: engine mongodb is not allowed in "
        f"namespace {prod} (allowed: mariadb 10.11; postgresql 17)"
    ) in message
    assert get(api, "DatabaseCluster", prod, "docs") is None  # the refusal changed nothing

    message = refused(cluster, database("DatabaseCluster", "newer", prod, "mariadb", "11.4"))
    assert "spec.datastore.version: mariadb 11.4 is not allowed" in message
    message = refused(cluster, database("DatabaseCluster", "big", prod, storage={"size": "10Gi"}))
    assert "spec.storage.size: 10Gi is over the limit of 5Gi" in message
    # autogrow grows the volumes with no request to review: its maximum is held to the limit
    sneaky = database(
        "DatabaseCluster", "sneaky", prod, storage={"size": "2Gi", "autogrow": {"maximum": "1Ei"}}
    )
    message = refused(cluster, sneaky)
    assert "spec.storage.autogrow.maximum: 1Ei is over the limit of 5Gi" in message
    assert get(api, "DatabaseCluster", prod, "sneaky") is None

    # Allowed: created, and labelled with its tier and the policies that govern it.
    create(cluster, database("DatabaseCluster", "orders", prod, storage={"size": "2Gi"}))
    obj = get(api, "DatabaseCluster", prod, "orders")
    assert obj is not None
    assert obj["metadata"]["labels"]["kubetrove.io/tier"] == "supported"
    assert obj["metadata"]["annotations"]["kubetrove.io/policies"] == policy_name("prod")

    # Updates: growing storage past the limit and switching to a version not allowed are refused, and
    # the stored object is unchanged; a compliant update passes; a delete is never refused.
    before = get(api, "DatabaseCluster", prod, "orders")
    for patch, field in (({"storage": {"size": "8Gi"}}, "spec.storage.size"),
                         ({"datastore": {"type": "mariadb", "version": "11.8"}}, "spec.datastore.version"),
                         ({"replicas": 5}, "spec.replicas"),
                         ({"storage": {"autogrow": {"maximum": "8Gi"}}},
                          "spec.storage.autogrow.maximum")):  # fmt: skip
        with pytest.raises(lc.ClusterError) as info:
            kubectl_as(cluster, "-n", prod, "patch", "databasecluster", "orders", "--type=merge",
                       "-p", json.dumps({"spec": patch}))  # fmt: skip
        assert field in str(info.value) and policy_name("prod") in str(info.value)
    after = get(api, "DatabaseCluster", prod, "orders")
    # The spec and its generation, not the resourceVersion: the session's operator reconciles the
    # cluster meanwhile (finalizer, status), which moves the resourceVersion but never the spec.
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    kubectl_as(cluster, "-n", prod, "patch", "databasecluster", "orders", "--type=merge",
               "-p", json.dumps({"spec": {"storage": {"size": "4Gi"}}}))  # fmt: skip

    # A namespace no policy selects: anything goes, and nothing is labelled.
    create(cluster, database("DatabaseCluster", "docs", dev, "mongodb", "8.0"))
    assert "kubetrove.io/tier" not in (
        get(api, "DatabaseCluster", dev, "docs")["metadata"].get("labels") or {}
    )
    kubectl_as(cluster, "-n", prod, "delete", "databasecluster", "orders", "--wait=false")


def test_required_settings_two_policies_and_evaluation(
    local_cluster: LocalCluster, spaces: Callable[..., str]
) -> None:
    cluster, api = local_cluster, local_cluster.api
    prod = spaces("req", environment="production")
    lab = spaces("lab", environment="lab")
    apply_policy(cluster, "base", {"limits": {"maxStorage": "100Gi"},
                                   "required": {"retainVolumes": True}})  # fmt: skip
    apply_policy(cluster, "dev", {
        "namespaceSelector": {"matchLabels": {"environment": "lab"}},
        "engines": [{"type": "postgresql"}, {"type": "mongodb", "versions": ["8.0"], "tier": "evaluation"}],
        "limits": {"maxStorage": "20Gi"},
    })  # fmt: skip
    apply_policy(cluster, "tight", {
        "namespaceSelector": {"matchLabels": {"environment": "production"}},
        "required": {"minReplicas": 3, "scheduledBackups": True, "verifiedBackups": True,
                     "automaticFailover": True},
    })  # fmt: skip
    until_serving(cluster, prod)

    message = refused(cluster, database("DatabaseInstance", "one", prod, "postgresql", "17"))
    assert f"DatabasePolicy {policy_name('tight')}: kind: a DatabaseInstance has 1 member" in message
    bare = database("DatabaseCluster", "bare", prod, replicas=2, failover={"automatic": False},
                    deletionPolicy={"volumes": "Delete"})  # fmt: skip
    message = refused(cluster, bare)
    for field in ("spec.replicas", "spec.backup.schedule", "spec.backup.verify", "spec.failover.automatic"):
        assert f"DatabasePolicy {policy_name('tight')}: {field}" in message, field
    assert f"DatabasePolicy {policy_name('base')}: spec.deletionPolicy.volumes: must be Retain" in message
    good = database("DatabaseCluster", "good", prod, backup={
        "schedule": "0 3 * * *", "verify": True, "storage": {"pvc": {"claimName": "backups"}}})  # fmt: skip
    create(cluster, good)

    # Two policies on the lab namespace: the strictest limit wins, and the refusal names only that policy.
    message = refused(
        cluster, database("DatabaseCluster", "wide", lab, "postgresql", "17", storage={"size": "50Gi"})
    )
    assert (
        f"DatabasePolicy {policy_name('dev')}: spec.storage.size: 50Gi is over the limit of 20Gi" in message
    )
    assert policy_name("base") not in message

    # Evaluation: allowed in lab, labelled; the label comes back if someone removes it.
    create(cluster, database("DatabaseCluster", "poc", lab, "mongodb", "8.0"))
    labels = get(api, "DatabaseCluster", lab, "poc")["metadata"]["labels"]
    assert labels["kubetrove.io/tier"] == "evaluation"
    kubectl_as(cluster, "-n", lab, "label", "databasecluster", "poc", "kubetrove.io/tier-")
    assert get(api, "DatabaseCluster", lab, "poc")["metadata"]["labels"]["kubetrove.io/tier"] == "evaluation"
    listed = cluster.kubectl("-n", lab, "get", "dbc", "-l", "kubetrove.io/tier=evaluation", "-o", "name")
    assert listed.split() == ["databasecluster.kubetrove.io/poc"]
    # Only the versions the policy lists are in evaluation; others are refused.
    message = refused(cluster, database("DatabaseCluster", "poc7", lab, "mongodb", "7.0"))
    assert "spec.datastore.version: mongodb 7.0 is not allowed" in message


def test_quota_sequential_and_parallel_creates(
    local_cluster: LocalCluster, spaces: Callable[..., str]
) -> None:
    cluster, api = local_cluster, local_cluster.api
    ns = spaces("quota", environment="quota")
    apply_policy(cluster, "quota", {"namespaceSelector": {"matchLabels": {"environment": "quota"}},
                                    "quotas": {"clusters": 4, "storage": "100Gi"}})  # fmt: skip
    until_serving(cluster, ns)
    create(cluster, database("DatabaseCluster", "first", ns))
    message = refused(cluster, database("DatabaseCluster", "huge", ns, storage={"size": "40Gi"}))
    assert "would use 123Gi of storage, over its quota of 100Gi" in message

    # Six parallel creates against three free places: exactly three are admitted.
    outcomes: dict[str, str] = {}

    def attempt(i: int) -> None:
        own = client.ApiClient(local_cluster.api.configuration)
        own.set_default_header("Impersonate-User", USER)
        try:
            client.CustomObjectsApi(own).create_namespaced_custom_object(
                GROUP, VERSION, ns, "databaseclusters", database("DatabaseCluster", f"par-{i}", ns)
            )
            outcomes[f"par-{i}"] = "created"
        except ApiException as exc:
            outcomes[f"par-{i}"] = json.loads(exc.body).get("message", "")
        finally:
            own.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = sorted(k for k, v in outcomes.items() if v == "created")
    assert len(created) == 3, outcomes
    for why in outcomes.values():
        if why != "created":
            assert "would have 5 DatabaseClusters, over its quota of 4" in why, why
    stored = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, ns, "databaseclusters"
    )
    assert len(stored["items"]) == 4

    # A delete is never refused, and frees a place (refused creates reserved nothing; "first" has long
    # been counted from the list, not from a reservation).
    kubectl_as(cluster, "-n", ns, "delete", "databasecluster", "first", "--wait=false")
    wait_until(lambda: get(api, "DatabaseCluster", ns, "first") is None, "the delete")
    create(cluster, database("DatabaseCluster", "again", ns))


def test_existing_violator_after_a_policy_change(
    local_cluster: LocalCluster, spaces: Callable[..., str]
) -> None:
    cluster, api = local_cluster, local_cluster.api
    ns = spaces("change", environment="change")
    until_serving(cluster, ns)
    create(cluster, database("DatabaseCluster", "old", ns, "mariadb", "11.4", storage={"size": "30Gi"}))
    apply_policy(cluster, "prod", {
        "namespaceSelector": {"matchExpressions": [{"key": "environment", "operator": "In",
                                                    "values": ["prod", "change"]}]},
        "engines": [{"type": "mariadb", "versions": ["10.11"]}, {"type": "postgresql", "versions": ["17"]}],
        "limits": {"maxStorage": "5Gi", "maxReplicas": 3},
    })  # fmt: skip
    # Unrelated changes of an existing violator pass; making it worse does not; the policy changes nothing.
    kubectl_as(cluster, "-n", ns, "patch", "databasecluster", "old", "--type=merge",
               "-p", json.dumps({"spec": {"parameters": {"max_connections": "200"}}}))  # fmt: skip
    with pytest.raises(lc.ClusterError, match=r"spec\.storage\.size: 40Gi is over the limit of 5Gi"):
        kubectl_as(cluster, "-n", ns, "patch", "databasecluster", "old", "--type=merge",
                   "-p", json.dumps({"spec": {"storage": {"size": "40Gi"}}}))  # fmt: skip
    obj = get(api, "DatabaseCluster", ns, "old")
    assert obj["spec"]["storage"]["size"] == "30Gi" and obj["spec"]["datastore"]["version"] == "11.4"
    kubectl_as(cluster, "-n", ns, "delete", "databasecluster", "old", "--wait=false")


def test_webhook_down_refuses_then_recovers_with_a_new_ca_and_policy_required(
    local_cluster: LocalCluster, spaces: Callable[..., str], admission: AdmissionOperator
) -> None:
    cluster = local_cluster
    ns = spaces("down", environment="down")
    until_serving(cluster, ns)
    bundle = cluster.kubectl("get", "validatingwebhookconfiguration", HOOK, "-o",
                             "jsonpath={.webhooks[0].clientConfig.caBundle}")  # fmt: skip
    admission.stop()
    with pytest.raises(lc.ClusterError) as info:
        create(cluster, database("DatabaseInstance", "while-down", ns))
    assert 'failed calling webhook "' in str(info.value)  # failurePolicy: Fail
    assert get(cluster.api, "DatabaseInstance", ns, "while-down") is None
    kubectl_as(cluster, "-n", ns, "get", "dbi")  # reads are never reviewed
    # Back, now installed to refuse databases where no policy applies (the chart's policy.required):
    # without "base" (the module's catch-all), no policy selects this namespace.
    cluster.kubectl("delete", "databasepolicies.kubetrove.io", policy_name("base"), "--ignore-not-found")
    admission.start(policy_required=True)
    wait_until(lambda: cluster.kubectl("get", "validatingwebhookconfiguration", HOOK, "-o",
                                       "jsonpath={.webhooks[0].clientConfig.caBundle}") != bundle,
               "the restarted operator to write its new CA")  # fmt: skip
    until_serving(cluster, ns)
    message = refused(cluster, database("DatabaseInstance", "after", ns))
    assert f"metadata.namespace: no DatabasePolicy selects namespace {ns}" in message
    assert "policy.required" in message
    apply_policy(cluster, "base", {"limits": {"maxStorage": "100Gi"}})  # a policy selects it again: allowed
    create(cluster, database("DatabaseInstance", "after", ns))
