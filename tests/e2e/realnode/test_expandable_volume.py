"""The real node's expandable StorageClass on a real pod: a claim of it is a filesystem of its size (a
write past it fails with ENOSPC), and growing the claim grows that filesystem online, seen from the same
running pod; deleting the claim removes the mount, the loop device and the image from the host.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from kubernetes import client
from realnode import EXPANDABLE_STORAGE_CLASS, registry
from realnode.imagevolumes import image_of, loops_under, mounted

from ..conftest import LocalCluster, wait_until

BUSYBOX = f"{registry.REPOSITORY}/busybox:1"
MI = 2**20


def _sh(cluster: LocalCluster, namespace: str, script: str) -> str:
    return cluster.kubectl("exec", "-n", namespace, "app", "--", "sh", "-c", script)


def _df_total(cluster: LocalCluster, namespace: str) -> int:
    """The size of the filesystem at /data as the pod sees it, in bytes."""
    return int(_sh(cluster, namespace, "df -k /data | tail -1").split()[1]) * 1024


def _manifests() -> list[dict[str, Any]]:
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
           "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": EXPANDABLE_STORAGE_CLASS,
                    "resources": {"requests": {"storage": "64Mi"}}}}  # fmt: skip
    container = {"name": "app", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}  # fmt: skip
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
           "spec": {"securityContext": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999},
                    "terminationGracePeriodSeconds": 1, "containers": [container],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]},
           }  # fmt: skip
    return [pvc, pod]


def test_a_volume_fills_at_its_size_and_grows_online(
    local_cluster: LocalCluster, real_namespace: str
) -> None:
    ns = real_namespace
    docs = "\n---\n".join(json.dumps(d) for d in _manifests())
    local_cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=docs)
    core = client.CoreV1Api(local_cluster.api)

    def running() -> bool:
        statuses = core.read_namespaced_pod("app", ns).status.container_statuses or []
        return bool(statuses) and all(s.ready for s in statuses)

    wait_until(running, "pod app running with its volume", timeout=120)
    pvc = core.read_namespaced_persistent_volume_claim("data", ns)
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    path = Path(pv.spec.local.path)
    assert mounted(path) is not None, f"{path} is not a mount point on the host"

    # A filesystem of about the claimed size (XFS keeps ~5 MiB of a 64 MiB image for its log)...
    assert 50 * MI < _df_total(local_cluster, ns) <= 64 * MI
    # ...writable by the pod's non-root user through fsGroup, and full at that size.
    out = _sh(local_cluster, ns, "dd if=/dev/zero of=/data/fill bs=1M count=100 2>&1; echo rc=$?")
    assert "No space left on device" in out and out.strip().endswith("rc=1"), out

    t0 = time.monotonic()
    core.patch_namespaced_persistent_volume_claim(
        "data", ns, {"spec": {"resources": {"requests": {"storage": "128Mi"}}}}
    )

    def grown() -> bool:
        claim = core.read_namespaced_persistent_volume_claim("data", ns)
        volume = core.read_persistent_volume(pv.metadata.name)
        sizes = (volume.spec.capacity["storage"], (claim.status.capacity or {}).get("storage"))
        return sizes == ("128Mi", "128Mi") and not (
            claim.status.conditions or claim.status.allocated_resource_statuses
        )

    wait_until(grown, "PV and PVC status at 128Mi, resize conditions cleared", timeout=60)
    took = time.monotonic() - t0
    claim = core.read_namespaced_persistent_volume_claim("data", ns)
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=data").items
    print(f"resize seen in {took:.1f}s; PVC annotations {claim.metadata.annotations}; "
          f"allocatedResources {claim.status.allocated_resources}; "
          f"events {[(e.reason, e.message) for e in events]}")  # fmt: skip

    # The same pod, never restarted, sees the grown filesystem and can write past the old size.
    assert 110 * MI < _df_total(local_cluster, ns) <= 128 * MI
    out = _sh(local_cluster, ns, "dd if=/dev/zero of=/data/more bs=1M count=40 2>&1; echo rc=$?")
    assert out.strip().endswith("rc=0"), out
    assert core.read_namespaced_pod("app", ns).status.container_statuses[0].restart_count == 0

    core.delete_namespaced_pod("app", ns, grace_period_seconds=1)
    wait_until(lambda: not core.list_namespaced_pod(ns).items, "pod app gone", timeout=60)
    core.delete_namespaced_persistent_volume_claim("data", ns)

    def volume_gone() -> bool:
        try:
            core.read_persistent_volume(pv.metadata.name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_until(volume_gone, f"PV {pv.metadata.name} reclaimed", timeout=60)
    assert mounted(path) is None
    assert not image_of(path).exists()
    assert not path.exists()
    assert image_of(path) not in loops_under(path.parent).values()
