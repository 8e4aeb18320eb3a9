"""The real node's plumbing, each piece on real pods: containers run from locally built images, pod and
Service networking (kube-proxy ClusterIPs from the host and from pods), cluster DNS for StatefulSet
pod names, and PVCs provisioned on local directories that a non-root pod can write (fsGroup).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from kubernetes import client
from realnode import registry

from ..conftest import LocalCluster, wait_until

# hack/images recipes.busybox, pulled from the local registry (IfNotPresent: the first pod pulls it).
BUSYBOX = f"{registry.REPOSITORY}/busybox:1"
DATA_MOUNT = {"name": "data", "mountPath": "/data"}
HTTPD = (
    "mkdir -p /tmp/www && echo hello-$(hostname) > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"
)


def _apply(cluster: LocalCluster, namespace: str, *docs: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin="\n---\n".join(json.dumps(d) for d in docs))


def _container(command: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    return {"name": "web", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", command], "readinessProbe": probe}  # fmt: skip


def _service(name: str, headless: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_pod_and_service_networking(local_cluster: LocalCluster, real_namespace: str, real_node: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
           "spec": {"containers": [_container(HTTPD)]}}  # fmt: skip
    client_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
                  "spec": {"containers": [{**_container(HTTPD), "name": "client"}]}}  # fmt: skip
    _apply(local_cluster, real_namespace, pod, client_pod, _service("web"))
    core = client.CoreV1Api(local_cluster.api)

    def ready(name: str) -> client.V1Pod | None:
        p = core.read_namespaced_pod(name, real_namespace)
        ok = p.status.container_statuses and all(c.ready for c in p.status.container_statuses)
        return p if ok else None

    web = wait_until(lambda: ready("web"), "pod web Ready")
    wait_until(lambda: ready("client"), "pod client Ready")
    assert web.spec.node_name == real_node
    assert _get(f"http://{web.status.pod_ip}:8080/") == "hello-web\n"
    cluster_ip = core.read_namespaced_service("web", real_namespace).spec.cluster_ip
    assert (
        wait_until(lambda: _try_get(f"http://{cluster_ip}/"), "the ClusterIP from the host") == "hello-web\n"
    )
    # Pod -> Service by its DNS name: CoreDNS on the bridge, kube-proxy's DNAT, the bridge back.
    fqdn = f"web.{real_namespace}.svc.cluster.local"
    out = local_cluster.kubectl(
        "exec", "-n", real_namespace, "client", "--", "wget", "-q", "-O", "-", f"http://{fqdn}/"
    )
    assert out == "hello-web\n"


def _try_get(url: str) -> str | None:
    try:
        return _get(url)
    except OSError:
        return None


def test_statefulset_dns_and_local_volumes(local_cluster: LocalCluster, real_namespace: str) -> None:
    write = "id -u > /data/owner && echo ok > /data/probe && " + HTTPD
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    # Non-root like the engines: the volume must be writable through fsGroup.
                    "securityContext": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999},
                    "containers": [{**_container(write), "volumeMounts": [DATA_MOUNT]}],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "kubetrove-local",
                         "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }  # fmt: skip
    _apply(local_cluster, real_namespace, _service("db", headless=True), sts)
    apps = client.AppsV1Api(local_cluster.api)
    wait_until(lambda: apps.read_namespaced_stateful_set("db", real_namespace).status.ready_replicas == 2,
               "StatefulSet db with 2 ready pods", timeout=180)  # fmt: skip
    core = client.CoreV1Api(local_cluster.api)
    for pvc in core.list_namespaced_persistent_volume_claim(real_namespace).items:
        assert pvc.status.phase == "Bound"
        pv = core.read_persistent_volume(pvc.spec.volume_name)
        assert pv.spec.local.path.endswith(pv.metadata.name)
    out = local_cluster.kubectl(
        "exec", "-n", real_namespace, "db-1", "--", "cat", "/data/owner", "/data/probe"
    )
    assert out.split() == ["999", "ok"]
    # The stable name of the OTHER member, as replicas reach their primary.
    peer = f"db-0.db.{real_namespace}.svc.cluster.local"
    out = local_cluster.kubectl(
        "exec", "-n", real_namespace, "db-1", "--", "wget", "-q", "-O", "-", f"http://{peer}:8080/"
    )
    assert out == "hello-db-0\n"
