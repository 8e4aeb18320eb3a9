"""The Helm chart on the local cluster: it installs, and its RBAC is enough for the operator to work.

kwok's pods are fake: the chart's operator pod goes Running but nothing runs in it. So the operator
process runs on the host instead, authenticated ONLY as the chart's ServiceAccount (a token from
`kubectl create token` in a kubeconfig of its own, no admin credentials), with the environment the
chart's Deployment gives it. It must take the Lease and bring examples/mariadb-instance.yaml to
Ready: any verb missing from templates/rbac.yaml shows up as a 403 and the test fails.
The process watches only the test's namespace, so a kopf handler that succeeded in ITS log was this
process reconciling the example (another operator on the shared cluster, e.g. a concurrent `make run`,
may act on it too; it cannot make this process's log show success or hide its 403s).

The release runs in namespaced mode (watchNamespaces = the test's namespace): the local cluster is
shared with other e2e tests and with a developer's `make run`, and a cluster-wide operator would act
on their objects too.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubetrove.api.resources import CLUSTER, ObjectRef
from kubetrove.api.specs import ClusterSpec
from kubetrove.datastores.registry import REGISTRY
from kubetrove.render import RenderInputs, render
from kubetrove.render.names import ChildNames
from tests.integration.helm import CHART, ROOT, helm

from .conftest import LocalCluster, wait_until

LEASE = "kubetrove-operator"  # the chart's leaderElection.leaseName default


def deployment_env(local_cluster: LocalCluster, namespace: str, name: str) -> dict[str, str]:
    """The literal env values of the chart's operator container, as installed."""
    dep = client.AppsV1Api(local_cluster.api).read_namespaced_deployment(name, namespace)
    return {e.name: e.value for e in dep.spec.template.spec.containers[0].env if e.value is not None}


def service_account_kubeconfig(local_cluster: LocalCluster, namespace: str, sa: str, path: Path) -> Path:
    """A kubeconfig that authenticates as namespace/sa only (a bound token), same server and CA."""
    token = local_cluster.kubectl("create", "token", sa, "-n", namespace, "--duration=1h").strip()
    admin = yaml.safe_load(local_cluster.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": sa}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(cfg))
    path.chmod(0o600)
    return path


def may(
    local_cluster: LocalCluster,
    subject: tuple[str, str],
    verb: str,
    resource: str,
    namespace: str,
    *,
    group: str = "",
    name: str | None = None,
) -> bool:
    """Whether the apiserver allows ``subject`` (ServiceAccount user, its namespace) the request."""
    user, sa_namespace = subject
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{sa_namespace}",
                "system:authenticated",
            ],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=resource, namespace=namespace, group=group, name=name
            ),
        )
    )
    reply = client.AuthorizationV1Api(local_cluster.api).create_subject_access_review(review)
    return bool(reply.status.allowed)


@pytest.fixture
def release(local_cluster: LocalCluster, namespace: str) -> Iterator[tuple[str, str]]:
    """(release namespace, full name): the chart installed and watching the test's namespace."""
    core = client.CoreV1Api(local_cluster.api)
    release_ns = f"kt-helm-{uuid.uuid4().hex[:6]}"
    name = f"kt{uuid.uuid4().hex[:6]}"
    env = {"KUBECONFIG": str(local_cluster.kubeconfig)}
    helm(
        "install", name, str(CHART), "-n", release_ns, "--create-namespace", "--wait", "--timeout", "120s",
        "--set", f"watchNamespaces={{{namespace}}}",
        # kwok's pods run nothing, so no webhook would answer (failurePolicy Fail would refuse every create
        # in the namespace); the in-cluster webhook is tested on the real node (realnode/test_operator_pod).
        "--set", "admission.enabled=false", env=env,
    )  # fmt: skip
    try:
        yield release_ns, f"{name}-kubetrove"
    finally:
        helm("uninstall", name, "-n", release_ns, "--wait", env=env, check=False)
        core.delete_namespace(release_ns)


def test_chart_installs_crds_rbac_and_a_running_operator_pod(
    local_cluster: LocalCluster, release: tuple[str, str], namespace: str
) -> None:
    release_ns, name = release
    ext = client.ApiextensionsV1Api(local_cluster.api)
    for crd in ("databaseinstances", "databaseclusters", "databasebackups"):
        assert ext.read_custom_resource_definition(f"{crd}.kubetrove.io").spec.group == "kubetrove.io"
    rbac = client.RbacAuthorizationV1Api(local_cluster.api)
    assert rbac.read_namespaced_role(name, namespace).rules
    assert rbac.read_namespaced_role(f"{name}-leader-election", release_ns).rules
    core = client.CoreV1Api(local_cluster.api)

    def running() -> list[Any]:
        pods = core.list_namespaced_pod(
            release_ns, label_selector="app.kubernetes.io/component=operator"
        ).items
        return [p for p in pods if p.status.phase == "Running"]

    # What the real apiserver's RBAC authorizer lets the chart's ServiceAccount do (SubjectAccessReview):
    # Secrets only in the watched namespace, pods never read one by one, only its own Lease renewed.
    sa = (f"system:serviceaccount:{release_ns}:{name}", release_ns)
    assert may(local_cluster, sa, "get", "secrets", namespace)
    assert not may(local_cluster, sa, "get", "secrets", "kube-system")
    assert not may(local_cluster, sa, "get", "secrets", release_ns)
    # ... but for the agents' CA, by its name only (agentTLS, handlers/agent_tls.py).
    assert may(local_cluster, sa, "get", "secrets", release_ns, name="kubetrove-agent-ca")
    assert not may(local_cluster, sa, "get", "secrets", release_ns, name="someone-elses")
    assert not may(local_cluster, sa, "list", "secrets", namespace)
    assert may(local_cluster, sa, "list", "pods", namespace) and not may(
        local_cluster, sa, "get", "pods", namespace
    )
    lease = "coordination.k8s.io"
    assert may(local_cluster, sa, "update", "leases", release_ns, group=lease, name=LEASE)
    assert not may(local_cluster, sa, "update", "leases", release_ns, group=lease, name="someone-elses")
    assert not may(local_cluster, sa, "get", "leases", release_ns, group=lease, name="someone-elses")
    assert may(local_cluster, sa, "create", "leases", release_ns, group=lease)
    assert not may(local_cluster, sa, "create", "leases", namespace, group=lease)

    (pod,) = wait_until(running, "the operator pod Running (kwok)")
    assert pod.spec.service_account_name == name
    assert pod.spec.security_context.run_as_non_root is True


def test_operator_with_the_chart_s_service_account_reconciles_an_example(
    local_cluster: LocalCluster, release: tuple[str, str], namespace: str, tmp_path: Path
) -> None:
    release_ns, name = release
    env = deployment_env(local_cluster, release_ns, name)
    assert env["KUBETROVE_NAMESPACES"] == namespace and env["KUBETROVE_LEASE_NAMESPACE"] == release_ns
    kubeconfig = service_account_kubeconfig(local_cluster, release_ns, name, tmp_path / "sa.kubeconfig")
    log_path = tmp_path / "operator.log"
    proc_env = {
        **os.environ,
        **env,
        "KUBECONFIG": str(kubeconfig),
        "PYTHONPATH": str(ROOT / "operator"),
        "KUBETROVE_METRICS_PORT": "0",  # not the chart's fixed port: the host may run another operator
        "KUBETROVE_HEALTH_PORT": "0",
        "KUBETROVE_STATUS_INTERVAL": "5",
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubetrove.handlers.main"],
            env=proc_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _reconcile_example(local_cluster, namespace, proc, log_path)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log = log_path.read_text(errors="replace")
    assert re.search(r"kopf\.objects .*Handler '\w+' succeeded", log), f"no handler succeeded:\n{log[-4000:]}"
    forbidden = [line for line in log.splitlines() if " 403" in line]
    assert not forbidden, "the chart's RBAC refused calls:\n" + "\n".join(forbidden[:20])


def _reconcile_example(
    local_cluster: LocalCluster, namespace: str, proc: subprocess.Popen[bytes], log_path: Path
) -> None:
    def log() -> str:
        return log_path.read_text(errors="replace")

    wait_until(lambda: "acquired by" in log() or proc.poll() is not None, "the operator to take the Lease")
    assert proc.poll() is None, f"operator exited:\n{log()[-4000:]}"
    body = yaml.safe_load((ROOT / "examples" / "mariadb-instance.yaml").read_text())
    body["metadata"]["namespace"] = namespace
    local_cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    api = client.CustomObjectsApi(local_cluster.api)
    meta = body["metadata"]

    def ready() -> Any:
        obj = api.get_namespaced_custom_object(
            "kubetrove.io", "v1alpha1", namespace, "databaseinstances", meta["name"]
        )
        status = obj.get("status") or {}
        current = status.get("observedGeneration") == obj["metadata"]["generation"]
        return obj if status.get("phase") == "Ready" and current else None

    try:
        obj = wait_until(ready, f"DatabaseInstance {meta['name']} Ready", timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log tail:\n{log()[-4000:]}") from None
    sts = client.AppsV1Api(local_cluster.api).read_namespaced_stateful_set(
        ChildNames(meta["name"]).statefulset, namespace
    )
    assert sts.status.ready_replicas == 1
    assert obj["status"]["credentialsSecret"]
    secret = client.CoreV1Api(local_cluster.api).read_namespaced_secret(
        obj["status"]["credentialsSecret"], namespace
    )
    assert all(base64.b64decode(v) for v in (secret.data or {}).values())


def test_the_rendered_network_policy_is_accepted_by_the_apiserver(
    local_cluster: LocalCluster, namespace: str
) -> None:
    """The policy the operator renders with networkPolicy.enabled, validated by the real apiserver
    (server-side dry run). NOT enforcement: the real node's CNI (bridge) does not enforce NetworkPolicy."""

    spec = ClusterSpec.model_validate({"datastore": {"type": "cassandra", "version": "5.0"}, "replicas": 3})
    owner = ObjectRef(namespace=namespace, name="ring", uid=str(uuid.uuid4()), generation=1, kind=CLUSTER)
    store = REGISTRY[spec.datastore.type]
    # Every key the engine and its agent read: render refuses credentials that lack one.
    credentials = {key: "x" for key in store.container(spec.datastore.version).credential_keys}
    inputs = RenderInputs(
        owner, spec, "agent:x", credentials, "token", network_policy_from="kubetrove-system"
    )
    policy = render(inputs, store).network_policy
    assert policy is not None
    policy["metadata"]["namespace"] = namespace
    out = local_cluster.kubectl(
        "apply", "--dry-run=server", "-o", "yaml", "-f", "-", stdin=yaml.safe_dump(policy)
    )
    accepted = yaml.safe_load(out)
    assert accepted["kind"] == "NetworkPolicy" and accepted["spec"]["ingress"] == policy["spec"]["ingress"]
