"""Updates: resources roll the pod, storage grows the PVC without a roll, a cluster upgrade rolls
replicas first and the primary last, and a scale-up adds members."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client, watch

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import Operator, apply_cr, example, poll, wait_phase

KWOK_CLASS = "kwok-volume"  # the class kwok provisions (hack/localcluster)


@pytest.fixture
def expandable_storage(local_cluster: LocalCluster) -> Iterator[None]:
    """kwok's StorageClass with allowVolumeExpansion on (the API server refuses resizes otherwise)."""
    storage = client.StorageV1Api(local_cluster.api)
    before = storage.read_storage_class(KWOK_CLASS).allow_volume_expansion
    storage.patch_storage_class(KWOK_CLASS, {"allowVolumeExpansion": True})
    yield
    storage.patch_storage_class(KWOK_CLASS, {"allowVolumeExpansion": before})


class DeletionOrder(list[str]):
    """Pod names in the order their deletion began, from a watch running in a thread."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__()
        self._watch, self._api, self._ns = watch.Watch(), api, namespace
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stopped = False

    def _run(self) -> None:
        core = client.CoreV1Api(self._api)
        try:
            for event in self._watch.stream(core.list_namespaced_pod, self._ns, timeout_seconds=300):
                pod = event["object"]
                if pod.metadata.deletion_timestamp and pod.metadata.name not in self:
                    self.append(pod.metadata.name)
        except Exception:
            if not self._stopped:  # a stream cut after the test is done with it is not a failure
                raise

    def __enter__(self) -> DeletionOrder:
        self._thread.start()
        time.sleep(1)  # let the watch's initial list pass before the change is applied
        return self

    def __exit__(self, *_: object) -> None:
        self._stopped = True
        self._watch.stop()


def _pods(api: client.ApiClient, namespace: str) -> dict[str, client.V1Pod]:
    return {p.metadata.name: p for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items}


def test_instance_resources_roll_and_storage_grows_in_place(
    local_cluster: LocalCluster, operator: Operator, namespace: str, expandable_storage: None
) -> None:
    api = local_cluster.api
    body = example("mariadb-instance", namespace)
    apply_cr(local_cluster, body)
    wait_phase(api, body, "Ready", op=operator)
    first_uid = _pods(api, namespace)["mariadb-demo-0"].metadata.uid

    body["spec"]["resources"]["requests"]["cpu"] = "300m"
    apply_cr(local_cluster, body)
    wait_phase(api, body, "Ready", op=operator)

    def recreated() -> client.V1Pod | None:
        pod = _pods(api, namespace).get("mariadb-demo-0")
        return pod if pod is not None and pod.metadata.uid != first_uid else None

    pod = poll(recreated, "the pod recreated from the new template")
    assert next(c for c in pod.spec.containers if c.name == "engine").resources.requests["cpu"] == "300m"
    poll(lambda: wait_phase(api, body, "Ready", op=operator), "Ready after the roll")

    rolled_uid = _pods(api, namespace)["mariadb-demo-0"].metadata.uid
    body["spec"]["storage"]["size"] = "2Gi"
    apply_cr(local_cluster, body)
    core = client.CoreV1Api(api)
    poll(lambda: core.read_namespaced_persistent_volume_claim("data-mariadb-demo-0", namespace)
         .spec.resources.requests["storage"] == "2Gi", "PVC grown to 2Gi")  # fmt: skip
    wait_phase(api, body, "Ready", op=operator)
    assert _pods(api, namespace)["mariadb-demo-0"].metadata.uid == rolled_uid  # no restart for storage


def test_cluster_upgrade_rolls_replicas_first_primary_last_then_scales(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    api = local_cluster.api
    body = example("mariadb-cluster", namespace)
    apply_cr(local_cluster, body)
    wait_phase(api, body, "Ready", op=operator)
    old = {n: p.metadata.uid for n, p in _pods(api, namespace).items()}

    body["spec"]["datastore"]["version"] = "11.8"
    with DeletionOrder(api, namespace) as deleted:
        apply_cr(local_cluster, body)
        obj = wait_phase(api, body, "Ready", timeout=180, op=operator)
    assert obj["status"]["version"] == "11.8"
    pods = _pods(api, namespace)
    assert all(pods[n].metadata.uid != uid for n, uid in old.items()), "every member was replaced"
    # The StatefulSet records the revision of each pod; all run the new one.
    sts = client.AppsV1Api(api).read_namespaced_stateful_set("mariadb-ha", namespace)
    assert {p.metadata.labels["controller-revision-hash"] for p in pods.values()} == {
        sts.status.update_revision
    }
    # Replicas first (highest ordinal first), the primary (ordinal 0: no role labels without agents) last.
    assert deleted == ["mariadb-ha-2", "mariadb-ha-1", "mariadb-ha-0"]

    body["spec"]["replicas"] = 5
    apply_cr(local_cluster, body)
    wait_phase(api, body, "Ready", timeout=120, op=operator)
    assert len(_pods(api, namespace)) == 5
