"""The Status phase reads why members do not run from their pods (fake API server): the cause in Ready,
Degraded past the deadline with one Warning Event per change, and no extra read while all are ready."""

from __future__ import annotations

from typing import Any

from kubetrove.api.common import Engine
from kubetrove.k8s.kinds import CUSTOM, EVENT, POD, PVC, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.render.labels import selector_labels
from tests.unit.reconcile.conftest import INSTANCE, LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

DBI = CUSTOM["DatabaseInstance"]
IMAGE = "mariadb:10.11.16"


def pod(conditions: list[dict[str, Any]], **status: Any) -> dict[str, Any]:
    labels = selector_labels(parsed().ref, Engine.MARIADB)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": "ns", "labels": labels,
                     "creationTimestamp": "2026-01-02T02:00:00Z"},
        "spec": {"containers": [{"name": "engine", "image": IMAGE}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]},
        "status": {"phase": "Pending", "conditions": conditions, **status},
    }  # fmt: skip


PULLING = pod(
    [{"type": "PodScheduled", "status": "True"},
     {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-02T02:00:00Z"}],
    containerStatuses=[{"name": "engine", "ready": False, "restartCount": 0,
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off"}}}],
)  # fmt: skip


async def start(kube: FakeKube, deps: Deps, **spec: Any) -> None:
    kube.put(body(INSTANCE, **spec))
    await run.reconcile(parsed(**spec), None, deps, LOG)
    sts = kube.find(STATEFULSET, "ns", "db")
    sts["status"] = {"observedGeneration": sts["metadata"]["generation"], "replicas": 1, "readyReplicas": 0,
                     "updatedReplicas": 1, "currentRevision": "r1", "updateRevision": "r1"}  # fmt: skip


def status(kube: FakeKube) -> dict[str, Any]:
    return kube.find(DBI, "ns", "db")["status"]  # type: ignore[no-any-return]


def condition(kube: FakeKube, kind: str) -> tuple[str, str, str]:
    c = next(c for c in status(kube)["conditions"] if c["type"] == kind)
    return c["status"], c["reason"], c["message"]


def warnings(kube: FakeKube) -> list[tuple[str, str]]:
    return [(e["reason"], e["note"]) for k, e in kube.objects.items() if k[1] == EVENT.kind]


async def test_an_image_pull_failure_is_named_then_degraded_past_the_deadline_with_one_event(
    kube: FakeKube, deps: Deps
) -> None:
    await start(kube, deps, progressDeadlineSeconds=7200)  # NOW is 03:04: db-0 waits since 02:00
    kube.put(PULLING)
    await run.refresh(parsed(progressDeadlineSeconds=7200), status(kube), deps, LOG)
    ready = condition(kube, "Ready")
    assert ready[:2] == ("False", "ImagePullFailed") and f"image {IMAGE} cannot be pulled" in ready[2]
    assert condition(kube, "Progressing")[:2] == ("True", "MembersStarting")
    assert status(kube)["phase"] == "Provisioning" and warnings(kube) == []

    await run.refresh(parsed(progressDeadlineSeconds=3600), status(kube), deps, LOG)
    assert status(kube)["phase"] == "Degraded"
    assert condition(kube, "Degraded")[:2] == ("True", "ImagePullFailed")
    assert condition(kube, "Progressing")[:2] == ("False", "ProgressDeadlineExceeded")
    ((reason, note),) = warnings(kube)
    assert reason == "ImagePullFailed" and IMAGE in note
    await run.refresh(parsed(progressDeadlineSeconds=3600), status(kube), deps, LOG)
    assert len(warnings(kube)) == 1  # once per change of reason, not per refresh


async def test_a_claim_of_a_storage_class_that_does_not_exist_is_named(kube: FakeKube, deps: Deps) -> None:
    spec = {"storage": {"size": "1Gi", "storageClassName": "nope"}}
    await start(kube, deps, **spec)
    message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    unbound = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    kube.put(pod([unbound]))
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": {"name": "data-db-0", "namespace": "ns", "labels": PULLING["metadata"]["labels"]},
             "spec": {"storageClassName": "nope"}, "status": {"phase": "Pending"}}  # fmt: skip
    kube.put(claim)
    await run.refresh(parsed(**spec), status(kube), deps, LOG)
    assert condition(kube, "Ready") == (
        "False",
        "VolumeNotBound",
        "0/1 members ready; db-0: volume claim data-db-0: storage class 'nope' does not exist",
    )


async def test_all_members_ready_reads_pods_only_for_the_members_agent(kube: FakeKube, deps: Deps) -> None:
    await start(kube, deps)
    kube.find(STATEFULSET, "ns", "db")["status"]["readyReplicas"] = 1
    kube.put(PULLING)  # stale: must not be read at all
    reads: list[str] = []
    real_list = kube.list

    async def counting(rtype: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(rtype.kind)
        return await real_list(rtype, *args, **kwargs)

    kube.list = counting  # type: ignore[method-assign]
    await run.refresh(parsed(), status(kube), deps, LOG)
    assert status(kube)["phase"] == "Ready" and PVC.kind not in reads
    # The causes read none; the Volume phase lists them once, to reach the member's agent.
    assert reads.count(POD.kind) == 1
