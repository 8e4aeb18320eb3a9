"""The operator as users run it: `helm install` of charts/kubetrove puts the operator image (built by
hack/images, pulled from the local registry) in a pod on the real node, with the chart's ServiceAccount
and the in-cluster config. Its probes make it Ready, it takes the Lease, its metrics endpoint answers a
scrape, and it brings a 2-member MariaDB DatabaseCluster to Ready; a client writes and reads through
the rw Service. Then `helm upgrade` to a newer operator image (``operator:0.1.1-next``, built by the
test from this tree with that version inside: its metrics say so) replaces the operator pod and leaves
every database pod untouched: same UIDs, no restarts, the StatefulSet's template unchanged. Last,
`helm uninstall` and a new `helm install` keep the database: its pods run on while no operator does,
and the new operator takes the cluster over with its data.

DatabasePolicy admission (the chart's default ``admission.enabled``) is served by that pod: the API
server calls it through the chart's webhook Service with the CA the pod made and wrote into the
configurations; a policy refuses a PostgreSQL instance in the database namespace with its message,
admits and labels the MariaDB cluster, and does so again after the upgrade (a new pod, a new CA).

The release watches only the test's database namespace (the cluster is shared with other tests).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import images  # hack/ is on sys.path: .conftest puts it there
import localcluster as lc
import pytest
import yaml
from images.push import push, remote_digest
from images.recipes import operator as operator_recipe
from kubernetes import client
from realnode import registry

from kubetrove.render.names import ChildNames
from tests.integration.helm import CHART, helm

from ..conftest import LocalCluster, wait_until
from ..operator_support import LEASE_NAMESPACE
from .agent_tls_checks import CA_SECRET, ca_of, check_agent_tls
from .conftest import app_secret, connect_app, real_namespace_named, real_resource, settled

LEASE = "kubetrove-operator"  # the chart's leaderElection.leaseName default
METRICS_PORT = 8080  # the chart's metrics.port default
NEXT_VERSION = "0.1.1-next"  # the newer operator the upgrade goes to (built by the test)


class Release:
    """A Helm release of the chart in its own (real-node) namespace, watching one other namespace."""

    def __init__(self, cluster: LocalCluster, namespace: str, watch: str) -> None:
        self.cluster, self.namespace, self.watch = cluster, namespace, watch
        self.name = f"kt{uuid.uuid4().hex[:6]}"
        self.env = {"KUBECONFIG": str(cluster.kubeconfig)}

    def helm(self, verb: str, *values: str, flags: tuple[str, ...] = ()) -> None:
        """helm install/upgrade --wait; a failure carries the operator pods' state and log."""
        sets = [a for v in values for a in ("--set", v)]
        try:
            helm(verb, self.name, str(CHART), "-n", self.namespace, "--wait", "--timeout", "300s",
                 *flags, *sets, env=self.env)  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose()}") from None

    def diagnose(self) -> str:
        """The release namespace's pods and events, and the operator's log tail."""
        parts = []
        for args in (("get", "pods", "-o", "wide"), ("get", "events"), ("logs", "--tail=40", "-l",
                     "app.kubernetes.io/component=operator", "--all-containers", "--prefix")):  # fmt: skip
            try:
                parts.append(self.cluster.kubectl("-n", self.namespace, *args))
            except lc.ClusterError as exc:  # diagnostics only: the failure is already raised
                parts.append(f"kubectl {' '.join(args)}: {exc}")
        return "\n".join(parts)

    @property
    def fullname(self) -> str:
        """The chart's kubetrove.fullname: the webhook configurations' and the ClusterRoles' name."""
        return f"{self.name}-kubetrove"

    def policy(self, spec: dict[str, Any], suffix: str = "rules") -> None:
        """A DatabasePolicy ``<release>-<suffix>`` selecting the release's database namespace only."""
        selector = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                          "values": [self.watch]}]}  # fmt: skip
        body = {"apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabasePolicy",
                "metadata": {"name": f"{self.name}-{suffix}"},
                "spec": {"namespaceSelector": selector, **spec}}  # fmt: skip
        client.CustomObjectsApi(self.cluster.api).create_cluster_custom_object(
            "kubetrove.io", "v1alpha1", "databasepolicies", body
        )

    def refusal(self, namespace: str) -> str:
        """The webhook's answer to a PostgreSQL 15 instance in ``namespace`` (which the policy refuses).

        Retried while the API server cannot reach the webhook yet: a Ready pod is routable through the
        webhook Service only once kube-proxy has programmed its endpoint (a second or so later; until
        then failurePolicy Fail refuses with "failed calling webhook")."""
        body = real_resource("DatabaseInstance", "refused", namespace, "postgresql", "15", "app")

        def answer() -> client.ApiException | None:
            try:
                client.CustomObjectsApi(self.cluster.api).create_namespaced_custom_object(
                    "kubetrove.io", "v1alpha1", namespace, "databaseinstances", body
                )
            except client.ApiException as exc:
                return None if "failed calling webhook" in str(exc.body) else exc
            raise AssertionError(f"a PostgreSQL instance was admitted in {namespace}:\n{self.diagnose()}")

        refused = wait_until(answer, "the webhook to answer through its Service", timeout=60)
        assert refused.status == 403, f"{refused.body}\n{self.diagnose()}"
        return str(json.loads(refused.body)["message"])

    def operator_pod(self) -> Any:
        """The one operator pod that is Ready (None while there is not exactly one)."""
        core = client.CoreV1Api(self.cluster.api)
        pods = core.list_namespaced_pod(self.namespace, label_selector="app.kubernetes.io/component=operator")
        live = [p for p in pods.items if p.metadata.deletion_timestamp is None]
        ready = [
            p
            for p in live
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        ]
        return ready[0] if len(live) == 1 and ready else None


@pytest.fixture
def release(local_cluster: LocalCluster, real_node: str) -> Iterator[Release]:
    """The chart installed in a real-node namespace; uninstalled (and the namespaces deleted) after.

    The session's own operator (a host process, alive for the whole session once a test asked for it) is
    cluster-wide (operator_support.py says why), so it reconciles the database namespace too, beside the
    chart's operator pod. Their renders agree, except for agent TLS: each operator would re-issue the
    database's certificate from its own CA. So when the session operator has made its CA, the release
    gets the same one (the CA Secret made before the install; the pod reads it, as it would read the CA
    of an earlier installation)."""
    api, tag = local_cluster.api, uuid.uuid4().hex[:6]
    with (
        real_namespace_named(api, f"helm-db-{tag}", session=False) as watch,
        real_namespace_named(api, f"kt-op-{tag}") as ns,
    ):
        rel = Release(local_cluster, ns, watch)
        share_session_ca(api, ns)
        rel.helm("install", f"watchNamespaces={{{watch}}}", f"imageRegistry={registry.REPOSITORY}")
        try:
            yield rel
        finally:
            # The chart's operator removes its finalizers before it goes; no other operator watches `watch`.
            with contextlib.suppress(Exception):
                local_cluster.kubectl("-n", watch, "delete", "databaseclusters.kubetrove.io", "--all",
                                      "--wait", "--timeout=120s")  # fmt: skip
            helm("uninstall", rel.name, "-n", ns, "--wait", env=rel.env, check=False)
            for suffix in ("rules", "tight"):
                with contextlib.suppress(Exception):
                    client.CustomObjectsApi(api).delete_cluster_custom_object(
                        "kubetrove.io", "v1alpha1", "databasepolicies", f"{rel.name}-{suffix}"
                    )


def share_session_ca(api: client.ApiClient, namespace: str) -> None:
    """Copy the session operator's agent CA (if it made one) into ``namespace`` under the chart's name."""
    core = client.CoreV1Api(api)
    try:
        session_ca = core.read_namespaced_secret(CA_SECRET, LEASE_NAMESPACE)
    except client.ApiException as exc:
        if exc.status == 404:
            return
        raise
    meta = client.V1ObjectMeta(name=CA_SECRET, namespace=namespace)
    core.create_namespaced_secret(namespace, client.V1Secret(metadata=meta, data=session_ca.data))


def scrape(pod: Any) -> str:
    """GET /metrics on the pod's IP (the host routes the pod network through the bridge)."""
    url = f"http://{pod.status.pod_ip}:{METRICS_PORT}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def running_version(text: str) -> list[str]:
    """The versions kubetrove_operator_info names in a Prometheus text exposition."""
    return re.findall(r'^kubetrove_operator_info{version="([^"]+)"} 1\.0$', text, re.MULTILINE)


def reconciles(text: str, kind: str) -> float:
    """The sum of kubetrove_reconcile_total for ``kind`` in a Prometheus text exposition."""
    pattern = rf'^kubetrove_reconcile_total{{[^}}]*kind="{kind}"[^}}]*}} ([0-9.e+]+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))


def template_diff(before: Any, after: Any) -> str:
    """A unified diff of two StatefulSets' pod templates (what changed them)."""
    a, b = (yaml.safe_dump(s.spec.template.to_dict()).splitlines() for s in (before, after))
    return "\n".join(difflib.unified_diff(a, b, "before", "after", lineterm=""))


def db_pods(cluster: LocalCluster, namespace: str) -> dict[str, tuple[str, int]]:
    """Database pod name -> (UID, total container restarts)."""
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(namespace).items
    return {
        p.metadata.name: (p.metadata.uid, sum(c.restart_count for c in p.status.container_statuses or []))
        for p in pods
    }


def test_helm_installed_operator_pod_runs_a_cluster_and_upgrades_without_touching_it(
    local_cluster: LocalCluster, release: Release, real_node: str
) -> None:
    api = local_cluster.api
    db_ns = release.watch
    operator_image = f"{registry.REPOSITORY}/{images.ensure('operator').ref}"

    pod = wait_until(release.operator_pod, "the operator pod Ready (readiness probe)")
    assert pod.spec.node_name == real_node
    assert pod.spec.containers[0].image == operator_image
    assert pod.spec.service_account_name == f"{release.name}-kubetrove"
    built = images.ensure("operator")
    assert remote_digest(registry.REPOSITORY, built.ref) == built.digest  # the registry serves this build

    lease = client.CoordinationV1Api(api)
    holder = wait_until(
        lambda: lease.read_namespaced_lease(LEASE, release.namespace).spec.holder_identity, "the Lease taken"
    )
    assert holder.startswith(f"{pod.metadata.name}-"), holder  # identity = hostname (the pod) + uuid

    # Admission, in the cluster: the pod wrote its CA into the chart's configurations and serves them.
    hooks = client.AdmissionregistrationV1Api(api)
    bundle = hooks.read_validating_webhook_configuration(release.fullname).webhooks[0].client_config.ca_bundle
    assert bundle, "the operator pod did not write its CA into the ValidatingWebhookConfiguration"
    assert (
        hooks.read_mutating_webhook_configuration(release.fullname).webhooks[0].client_config.ca_bundle
        == bundle
    )
    release.policy({"engines": [{"type": "mariadb", "versions": ["10.11"]}], "limits": {"maxReplicas": 3}})
    assert f"DatabasePolicy {release.name}-rules: spec.datastore.type: engine postgresql is not allowed in " \
        f"namespace {db_ns} (allowed: mariadb 10.11)" in release.refusal(db_ns)  # fmt: skip

    name = "shop"
    app_secret(api, db_ns)
    body = real_resource("DatabaseCluster", name, db_ns, "mariadb", "10.11", "orders")
    body["spec"]["replicas"] = 2
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "kubetrove.io", "v1alpha1", db_ns, "databaseclusters", body
    )

    def status() -> dict[str, Any]:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "kubetrove.io", "v1alpha1", db_ns, "databaseclusters", name
        )
        return dict(obj.get("status") or {})

    labels = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "kubetrove.io", "v1alpha1", db_ns, "databaseclusters", name
    )["metadata"]["labels"]
    assert labels["kubetrove.io/tier"] == "supported"  # the mutating webhook, in the cluster
    wait_until(
        lambda: settled(status()) and status().get("primary"), "the DatabaseCluster Ready", timeout=600
    )
    assert reconciles(scrape(pod), "DatabaseCluster") >= 1
    # Agent TLS (the chart's default): the operator pod made the CA and talks to the agents over mTLS.
    check_agent_tls(api, release.namespace, db_ns, name)
    ca_before = ca_of(api, release.namespace)

    # A policy tightened after the fact: the running cluster is reported (status and a Warning Event),
    # never changed. The operator pod's report runs on create and every status interval.
    release.policy({"limits": {"maxReplicas": 1}}, suffix="tight")
    objects = client.CustomObjectsApi(api)

    def violators() -> list[dict[str, Any]]:
        tight = objects.get_cluster_custom_object("kubetrove.io", "v1alpha1", "databasepolicies",
                                                  f"{release.name}-tight")  # fmt: skip
        return list((tight.get("status") or {}).get("violators") or [])

    (violator,) = wait_until(violators, "the tightened policy to report the cluster", timeout=120)
    assert (violator["namespace"], violator["name"]) == (db_ns, name)
    assert violator["message"] == "spec.replicas: 2 members is over the limit of 1"
    # Through the core API: the events.k8s.io model of the Python client refuses events without
    # eventTime (kubelet's), which the namespace has.
    warned = wait_until(
        lambda: [e for e in client.CoreV1Api(api).list_namespaced_event(db_ns).items
                 if e.reason == "PolicyViolation" and e.involved_object.name == name],
        "the PolicyViolation Event",
    )  # fmt: skip
    assert f"DatabasePolicy {release.name}-tight: spec.replicas" in warned[0].message

    names = ChildNames(name)
    core = client.CoreV1Api(api)
    rw = core.read_namespaced_service(names.rw_service, db_ns).spec.cluster_ip
    conn = connect_app("mariadb", rw, "orders")
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(32))")
        cur.execute("INSERT INTO t VALUES (1, 'before upgrade')")
        cur.execute("SELECT note FROM t WHERE id = 1")
        assert cur.fetchone() == ("before upgrade",)
    conn.close()

    apps = client.AppsV1Api(api)
    sts_before = apps.read_namespaced_stateful_set(names.statefulset, db_ns)
    pods_before = db_pods(local_cluster, db_ns)
    assert len(pods_before) == 2

    assert running_version(scrape(pod)) == [built.ref.rpartition(":")[2]]
    next_build = images.ensure_recipe(operator_recipe(NEXT_VERSION))
    with images.locked():  # no registry garbage collection meanwhile
        push(next_build, registry.REPOSITORY)
    new_image = f"{registry.REPOSITORY}/{next_build.ref}"
    # pullPolicy Always: the tag is rebuilt from each tree, and the node keeps the image of an earlier
    # session under the same tag (it pulled a stale 0.1.1-next in CI, which rendered another template).
    release.helm("upgrade", f"image.tag={NEXT_VERSION}", "image.pullPolicy=Always", flags=("--reuse-values",))

    def upgraded() -> Any:
        new = release.operator_pod()
        return new if new and new.spec.containers[0].image == new_image else None

    new_pod = wait_until(upgraded, "the upgraded operator pod Ready")
    assert new_pod.metadata.uid != pod.metadata.uid
    assert running_version(scrape(new_pod)) == [NEXT_VERSION]  # the new build runs, not a retag
    wait_until(
        lambda: lease.read_namespaced_lease(LEASE, release.namespace).spec.holder_identity.startswith(
            f"{new_pod.metadata.name}-"
        ),
        "the new operator pod holding the Lease",
    )
    # The new operator resumes the cluster (kopf's resume handler reconciles it once at start).
    wait_until(lambda: reconciles(scrape(new_pod), "DatabaseCluster") >= 1, "the new operator to reconcile")
    sts_after = apps.read_namespaced_stateful_set(names.statefulset, db_ns)
    assert sts_after.metadata.generation == sts_before.metadata.generation, template_diff(
        sts_before, sts_after
    )

    assert db_pods(local_cluster, db_ns) == pods_before  # same UIDs, no restarts
    assert ca_of(api, release.namespace) == ca_before  # the agents' CA outlives the operator's restart
    # The new pod made a new CA, wrote it, and serves the webhooks.
    new_bundle = (
        hooks.read_validating_webhook_configuration(release.fullname).webhooks[0].client_config.ca_bundle
    )
    assert new_bundle and new_bundle != bundle
    assert f"DatabasePolicy {release.name}-rules" in release.refusal(db_ns)
    assert settled(status()), status()
    conn = connect_app("mariadb", rw, "orders")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2, 'after upgrade')")
        cur.execute("SELECT note FROM t ORDER BY id")
        assert cur.fetchall() == (("before upgrade",), ("after upgrade",))
    conn.close()

    # Uninstall: the operator goes, the databases stay (the CRDs and the DatabaseCluster are not the
    # release's; the data pods belong to the cluster's StatefulSet).
    helm("uninstall", release.name, "-n", release.namespace, "--wait", env=release.env)
    wait_until(lambda: not core.list_namespaced_pod(release.namespace).items, "the operator pod gone")
    assert db_pods(local_cluster, db_ns) == pods_before
    conn = connect_app("mariadb", rw, "orders")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (3, 'no operator')")
    conn.close()

    release.helm("install", f"watchNamespaces={{{db_ns}}}", f"imageRegistry={registry.REPOSITORY}")
    again = wait_until(release.operator_pod, "the reinstalled operator pod Ready")
    wait_until(
        lambda: reconciles(scrape(again), "DatabaseCluster") >= 1, "the reinstalled operator to reconcile"
    )
    assert settled(status()) and status().get("primary"), status()
    assert ca_of(api, release.namespace) == ca_before  # kept across uninstall and install: no re-issue
    check_agent_tls(api, release.namespace, db_ns, name)
    assert apps.read_namespaced_stateful_set(names.statefulset, db_ns).metadata.generation == (
        sts_before.metadata.generation
    )
    assert db_pods(local_cluster, db_ns) == pods_before
    conn = connect_app("mariadb", rw, "orders")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (3,)
    conn.close()
