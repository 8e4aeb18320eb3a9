"""Storage growth on a StorageClass without allowVolumeExpansion is a refused spec, not an endless retry."""

from __future__ import annotations

import pytest

from kubetrove.k8s.kinds import CUSTOM, EVENT, PVC
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import InvalidSpec
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

DBI = CUSTOM["DatabaseInstance"]


def seed(kube: FakeKube, expandable: bool | None, storage_class: str | None = "standard") -> None:
    kube.put(body())
    if expandable is not None:
        sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"}}
        kube.put({**sc, "provisioner": "x", "allowVolumeExpansion": expandable})
    spec = {"resources": {"requests": {"storage": "1Gi"}}, "storageClassName": storage_class}
    meta = {"name": "data-db-0", "namespace": "ns"}
    kube.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec})


def size(kube: FakeKube) -> str:
    return str(kube.find(PVC, "ns", "data-db-0")["spec"]["resources"]["requests"]["storage"])


async def test_growth_on_a_class_without_expansion_is_refused(kube: FakeKube, deps: Deps) -> None:
    seed(kube, expandable=False)
    await run.reconcile(parsed(), None, deps, LOG)
    writes = len(kube.calls)
    with pytest.raises(InvalidSpec, match="StorageClass standard does not allow volume expansion"):
        await run.reconcile(parsed(generation=2, storage={"size": "2Gi"}), None, deps, LOG)
    assert size(kube) == "1Gi"
    status = kube.find(DBI, "ns", "db")["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "Invalid" and "spec.storage.size" in failed["message"]
    (event,) = [o for k, o in kube.objects.items() if k[1] == EVENT.kind]
    assert event["type"] == "Warning" and "allowVolumeExpansion" in event["note"]
    # Only the status and the Event were written: no child changed.
    assert {kind for _, kind, _ in kube.calls[writes:]} <= {"DatabaseInstance", "Event"}


async def test_the_refresh_keeps_the_refusal(kube: FakeKube, deps: Deps) -> None:
    seed(kube, expandable=False)
    await run.reconcile(parsed(), None, deps, LOG)
    grow = parsed(generation=2, storage={"size": "2Gi"})
    with pytest.raises(InvalidSpec):
        await run.reconcile(grow, None, deps, LOG)
    await run.refresh(grow, kube.find(DBI, "ns", "db")["status"], deps, LOG)
    assert kube.find(DBI, "ns", "db")["status"]["phase"] == "Failed"


@pytest.mark.parametrize(
    ("expandable", "storage_class"), [(True, "standard"), (None, "standard"), (None, None)]
)
async def test_growth_goes_ahead_when_allowed_or_unknown(
    kube: FakeKube, deps: Deps, expandable: bool | None, storage_class: str | None
) -> None:
    seed(kube, expandable, storage_class)
    await run.reconcile(parsed(), None, deps, LOG)
    await run.reconcile(parsed(generation=2, storage={"size": "2Gi"}), None, deps, LOG)
    assert size(kube) == "2Gi"


async def test_the_storage_phase_keeps_the_autogrown_size(kube: FakeKube, deps: Deps) -> None:
    """status.storage.size (autogrow's decision) is kept by a reconcile; a larger spec size wins."""
    seed(kube, expandable=True)
    auto = {"size": "1Gi"}  # (autogrow itself runs in a cluster's loop; the phase only reads the status)
    await run.reconcile(parsed(storage=auto), None, deps, LOG)
    grown = {"storage": {"size": "2Gi"}}
    await run.reconcile(parsed(generation=2, storage=auto), grown, deps, LOG)
    assert size(kube) == "2Gi"
    await run.reconcile(parsed(generation=3, storage={**auto, "size": "3Gi"}), grown, deps, LOG)
    assert size(kube) == "3Gi"
