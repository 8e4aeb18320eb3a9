"""Storage autogrow through the clustering record on the fake API server: status.storage, the claims, the
StorageAutogrow condition, Events, and the restart of an engine stopped on a full disk."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubetrove.agent.protocol import Role, Status, VolumeUsage
from kubetrove.autogrow import CONDITION
from kubetrove.clustering.kube_record import KubeClusterRecord
from kubetrove.clustering.ops import MemberUnreachable
from kubetrove.k8s.kinds import EVENT, POD, PVC
from tests.unit.clustering.test_cluster_record import NAME, NS, PODS, REF, STORE, StrictKube, seed, status_of
from tests.unit.reconcile.fake_kube import FakeKube

GIB = 2**30
AUTOGROW = {"storage": {"size": "1Gi", "storageClassName": "standard",
                        "autogrow": {"threshold": 80, "increment": "1Gi", "maximum": "3Gi"}}}  # fmt: skip


def claims(kube: FakeKube, size: str = "1Gi", capacity: str | None = None) -> None:
    for i in range(3):
        kube.put(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": f"data-{NAME}-{i}", "namespace": NS},
                "spec": {"resources": {"requests": {"storage": size}}, "storageClassName": "standard"},
                "status": {"capacity": {"storage": capacity or size}},
            }
        )


def storage_class(kube: FakeKube, expandable: bool) -> None:
    kube.put({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"},
              "provisioner": "x", "allowVolumeExpansion": expandable})  # fmt: skip


def requested(kube: FakeKube) -> list[str]:
    return [
        (kube.find(PVC, NS, f"data-{NAME}-{i}") or {})["spec"]["resources"]["requests"]["storage"]
        for i in range(3)
    ]


def resize(kube: FakeKube, capacity: str) -> None:
    """The CSI driver and the kubelet finished: every claim's capacity is ``capacity``."""
    for i in range(3):
        pvc = kube.find(PVC, NS, f"data-{NAME}-{i}")
        assert pvc is not None
        pvc["status"] = {"capacity": {"storage": capacity}}


def filled(percent: int, gib: int = 1) -> Status:
    used = percent * gib * GIB // 100
    volume = VolumeUsage(used_bytes=used, available_bytes=gib * GIB - used, capacity_bytes=gib * GIB)
    return Status(engine="mariadb", version="10.11", role=Role.REPLICA, read_only=True, healthy=True,
                  volume=volume)  # fmt: skip


def events(kube: FakeKube) -> list[tuple[str, str, str]]:
    found = [o for k, o in kube.objects.items() if k[1] == EVENT.kind]
    return [(e["reason"], e["type"], e["note"]) for e in found]


def condition(kube: FakeKube) -> dict[str, Any]:
    return next(c for c in status_of(kube)["conditions"] if c["type"] == CONDITION)


async def never(pod: str) -> VolumeUsage | None:
    raise AssertionError(f"asked {pod}'s volume alone, though its status answered")


class Cycle:
    """One record across cycles (as the loop keeps it): load, then grow_storage with these statuses."""

    def __init__(self, kube: FakeKube) -> None:
        self.record = KubeClusterRecord(kube, REF, STORE)
        self.asked: list[str] = []
        self.down_volume: VolumeUsage | None = None

    async def ask(self, pod: str) -> VolumeUsage | None:
        self.asked.append(pod)
        if self.down_volume is None:
            raise MemberUnreachable(pod)
        return self.down_volume

    def __call__(self, statuses: dict[str, Status | None]) -> None:
        async def go() -> None:
            await self.record.load()
            await self.record.grow_storage(statuses, self.ask)

        asyncio.run(go())


@pytest.fixture
def kube() -> StrictKube:
    k = StrictKube()
    seed(k, AUTOGROW)
    claims(k)
    storage_class(k, True)
    return k


def test_below_the_threshold_nothing_is_read_or_grown(kube: StrictKube) -> None:
    cycle = Cycle(kube)
    cycle(dict.fromkeys(PODS, filled(50)))
    writes = len(kube.calls)
    cycle(dict.fromkeys(PODS, filled(60)))
    assert requested(kube) == ["1Gi"] * 3
    assert (condition(kube)["status"], condition(kube)["reason"]) == ("True", "BelowThreshold")
    assert len(kube.calls) == writes  # an unchanged condition is not written again
    assert "storage" not in status_of(kube)


def test_crossing_grows_every_claim_once_and_waits_for_the_expansion(kube: StrictKube) -> None:
    cycle = Cycle(kube)
    full = {"db-0": filled(50), "db-1": filled(85), "db-2": filled(50)}
    cycle(full)
    assert requested(kube) == ["2Gi"] * 3
    storage = status_of(kube)["storage"]
    assert storage["size"] == "2Gi"
    last = storage["lastGrowth"]
    assert (last["from"], last["to"], last["member"], last["full"]) == ("1Gi", "2Gi", "db-1", ["db-1"])
    ((reason, kind, note),) = events(kube)
    assert (reason, kind) == ("StorageGrown", "Normal")
    assert "from 1Gi to 2Gi" in note and "db-1" in note
    cycle(full)  # still full, the expansion in flight: no stacking
    assert requested(kube) == ["2Gi"] * 3
    assert condition(kube)["reason"] == "ExpansionInProgress"
    resize(kube, "2Gi")
    cycle({"db-0": filled(25, gib=2), "db-1": filled(43, gib=2), "db-2": filled(25, gib=2)})
    assert condition(kube)["reason"] == "BelowThreshold"
    assert len(events(kube)) == 1


def test_maximum_reached_is_a_false_condition_and_one_warning(kube: StrictKube) -> None:
    seed(kube, AUTOGROW, {"storage": {"size": "3Gi"}})
    claims(kube, "3Gi")
    cycle = Cycle(kube)
    cycle(dict.fromkeys(PODS, filled(90, gib=3)))
    cycle(dict.fromkeys(PODS, filled(90, gib=3)))
    assert requested(kube) == ["3Gi"] * 3
    assert (condition(kube)["status"], condition(kube)["reason"]) == ("False", "MaximumReached")
    assert [(r, t) for r, t, _ in events(kube)] == [("StorageAutogrowMaximumReached", "Warning")]


def test_a_class_without_expansion_is_refused_with_a_condition(kube: StrictKube) -> None:
    storage_class(kube, False)
    cycle = Cycle(kube)
    cycle(dict.fromkeys(PODS, filled(90)))
    assert requested(kube) == ["1Gi"] * 3
    cond = condition(kube)
    assert (cond["status"], cond["reason"]) == ("False", "ExpansionNotAllowed")
    assert "allowVolumeExpansion" in cond["message"]
    assert [(r, t) for r, t, _ in events(kube)] == [("StorageAutogrowRefused", "Warning")]


def test_a_full_disk_engine_is_grown_then_restarted_once(kube: StrictKube) -> None:
    """db-1's engine stopped on a full disk: its status fails, its volume is asked alone; after the
    expansion its pod is deleted once so the engine starts on the larger filesystem."""
    pod = kube.find(POD, NS, "db-1")
    assert pod is not None
    pod["status"]["containerStatuses"] = [
        {"name": "engine", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        {"name": "agent", "ready": True, "state": {"running": {}}},
    ]
    cycle = Cycle(kube)
    cycle.down_volume = VolumeUsage(used_bytes=GIB, available_bytes=0, capacity_bytes=GIB)
    down: dict[str, Status | None] = {"db-0": filled(40), "db-1": None, "db-2": filled(40)}
    cycle(down)
    assert cycle.asked == ["db-1"]
    assert requested(kube) == ["2Gi"] * 3
    cycle(down)  # expansion in flight: not restarted yet
    assert kube.find(POD, NS, "db-1") is not None
    resize(kube, "2Gi")
    cycle.down_volume = VolumeUsage(used_bytes=GIB, available_bytes=GIB, capacity_bytes=2 * GIB)
    cycle(down)
    assert kube.find(POD, NS, "db-1") is None  # deleted: the StatefulSet makes it again
    assert status_of(kube)["storage"]["lastGrowth"]["restarted"] == ["db-1"]
    assert [r for r, _, _ in events(kube)] == ["StorageGrown", "StorageRestartedMember"]
    kube.put({**pod, "metadata": {k: v for k, v in pod["metadata"].items() if k != "resourceVersion"}})
    cycle(down)  # the new pod's engine is still starting: never deleted twice for one growth
    assert kube.find(POD, NS, "db-1") is not None
    assert cycle.asked == ["db-1"]  # asked alone at most every refresh_seconds


def test_status_volume_is_used_and_autogrow_off_removes_the_condition(kube: StrictKube) -> None:
    cycle = Cycle(kube)
    cycle(dict.fromkeys(PODS, filled(50)))
    assert condition(kube)["reason"] == "BelowThreshold"
    seed(kube, {"storage": {"size": "1Gi"}}, status_of(kube))
    cycle.record.refresh_seconds = 0
    cycle.record.asked_volumes.clear()
    asyncio.run(cycle.record.load())
    asyncio.run(cycle.record.grow_storage(dict.fromkeys(PODS, filled(90)), never))
    assert all(c["type"] != CONDITION for c in status_of(kube).get("conditions", []))
    assert requested(kube) == ["1Gi"] * 3
