"""The control plane's controllers work: StatefulSet rollout on kwok nodes, PVC binding, garbage collection.

The operator relies on exactly these: the StatefulSet controller creating pods and PVCs from
volumeClaimTemplates, kwok's volume stages binding PVCs on the default StorageClass, and the garbage
collector deleting everything owned (transitively) by a deleted owner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

REPLICAS = 2
NAME = "db"


def _statefulset(owner: client.V1ConfigMap) -> client.V1StatefulSet:
    labels = {"app": NAME}
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name=owner.metadata.name, uid=owner.metadata.uid
    )
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=NAME, owner_references=[ref]),
        spec=client.V1StatefulSetSpec(
            replicas=REPLICAS,
            service_name=NAME,
            selector=client.V1LabelSelector(match_labels=labels),
            # PVCs get the StatefulSet as owner, so the garbage collector removes them with it.
            persistent_volume_claim_retention_policy=client.V1StatefulSetPersistentVolumeClaimRetentionPolicy(
                when_deleted="Delete", when_scaled="Retain"
            ),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name=NAME, image="registry.invalid/kwok-fake:1")]
                ),
            ),
            volume_claim_templates=[
                client.V1PersistentVolumeClaim(
                    metadata=client.V1ObjectMeta(name="data"),
                    spec=client.V1PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"],
                        resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                    ),
                )
            ],
        ),
    )


def _all(items: list[Any], done: Callable[[Any], bool]) -> list[Any]:
    """items if there are REPLICAS of them and all are done, else [] (keep polling)."""
    return items if len(items) == REPLICAS and all(done(i) for i in items) else []


def _bound(pvc: client.V1PersistentVolumeClaim) -> bool:
    return bool(pvc.status.phase == "Bound")


def _ready(pod: client.V1Pod) -> bool:
    conds = pod.status.conditions or []
    return pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "True" for c in conds)


def test_statefulset_runs_binds_pvcs_and_is_garbage_collected_with_its_owner(
    api_client: client.ApiClient, namespace: str, eventually: Callable[..., Any]
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"k": "v"})
    )
    apps.create_namespaced_stateful_set(namespace, _statefulset(owner))

    pods = eventually(
        lambda: _all(core.list_namespaced_pod(namespace).items, _ready), f"{REPLICAS} pods Running and Ready"
    )
    assert sorted(p.metadata.name for p in pods) == [f"{NAME}-{i}" for i in range(REPLICAS)]
    assert all(p.spec.node_name == "kwok-node-0" for p in pods)

    pvcs = eventually(
        lambda: _all(core.list_namespaced_persistent_volume_claim(namespace).items, _bound),
        f"{REPLICAS} PVCs Bound",
    )
    assert sorted(c.metadata.name for c in pvcs) == [f"data-{NAME}-{i}" for i in range(REPLICAS)]
    assert all(c.spec.storage_class_name == "kwok-volume" for c in pvcs)  # the default StorageClass
    eventually(
        lambda: (apps.read_namespaced_stateful_set(NAME, namespace).status.ready_replicas or 0) == REPLICAS,
        "StatefulSet status readyReplicas",
    )

    core.delete_namespaced_config_map("owner", namespace)

    def sts_gone() -> bool:
        try:
            apps.read_namespaced_stateful_set(NAME, namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    eventually(sts_gone, "the garbage collector to delete the StatefulSet")
    eventually(lambda: not core.list_namespaced_pod(namespace).items, "the pods to be deleted")
    eventually(
        lambda: not core.list_namespaced_persistent_volume_claim(namespace).items, "the PVCs to be deleted"
    )
