"""KubeClusterRecord on the fake API server: what the loop reads and writes on the cluster and its pods."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from kubetrove.agent.protocol import Role, Status, VolumeUsage
from kubetrove.api.resources import CLUSTER, ObjectRef
from kubetrove.clustering.kube_record import CONDITION, KubeClusterRecord
from kubetrove.clustering.process import Loop
from kubetrove.datastores import registry
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import CUSTOM, EVENT, POD, STATEFULSET, ResourceType
from kubetrove.metrics import OperatorMetrics
from kubetrove.observation import STORAGE_CONDITION
from kubetrove.render.labels import selector_labels
from kubetrove.render.names import LABEL_ROLE
from tests.unit.clustering.fake import FakeOps, setcmp
from tests.unit.reconcile.fake_kube import FakeKube, Obj

NS, NAME = "ns", "db"
PODS = [f"{NAME}-{i}" for i in range(3)]
DBC = CUSTOM["DatabaseCluster"]
STORE = registry.get("mariadb")
REF = ObjectRef(namespace=NS, name=NAME, uid="uid-db", generation=1, kind=CLUSTER)


class StrictKube(FakeKube):
    """FakeKube plus the API server's resourceVersion precondition on patches, and injected races."""

    def __init__(self) -> None:
        super().__init__()
        self.races = 0  # how many next status patches find the object changed by someone else
        self.primary_at_label: list[str | None] = []  # status.primary when each pod label was written

    async def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        if rtype.kind == "Pod":
            owner = self.find(DBC, NS, NAME) or {}
            self.primary_at_label.append((owner.get("status") or {}).get("primary"))
        if subresource == "status" and self.races > 0:
            self.races -= 1
            obj = self.find(rtype, namespace, name)
            assert obj is not None
            self._store(rtype, copy.deepcopy(obj))  # a concurrent writer bumps resourceVersion
        want = (patch.get("metadata") or {}).get("resourceVersion")
        obj = self.find(rtype, namespace, name)
        if want is not None and obj is not None and obj["metadata"]["resourceVersion"] != want:
            self.calls.append((f"conflict/{subresource}", rtype.kind, name))
            raise Conflict(409, "Conflict", "the object has been modified")
        return await super().patch(rtype, namespace, name, patch, subresource)


def seed(kube: FakeKube, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> None:
    kube.put(
        {
            "apiVersion": DBC.api_version,
            "kind": "DatabaseCluster",
            "metadata": {"name": NAME, "namespace": NS, "uid": "uid-db"},
            "spec": {
                "datastore": {"type": "mariadb", "version": "10.11"},
                "storage": {"size": "1Gi"},
                "replicas": 3,
                **(spec or {}),
            },
            **({"status": status} if status else {}),
        }
    )
    kube.put({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": NAME, "namespace": NS},
              "spec": {"replicas": 3}})  # fmt: skip
    for i, pod in enumerate(PODS):
        meta = {"name": pod, "namespace": NS, "labels": selector_labels(REF, STORE.engine)}
        kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"podIP": f"10.0.0.{i}"}})


@pytest.fixture
def kube() -> StrictKube:
    k = StrictKube()
    seed(k)
    return k


def record(kube: FakeKube, **kw: Any) -> KubeClusterRecord:
    return KubeClusterRecord(kube, REF, STORE, **kw)


def status_of(kube: FakeKube) -> dict[str, Any]:
    obj = kube.find(DBC, NS, NAME)
    assert obj is not None
    return dict(obj.get("status") or {})


def replica(pos: str) -> Status:
    return Status(engine="mariadb", version="10.11", role=Role.REPLICA, read_only=True, healthy=True,
                  position=pos, source_host="db-0", replication_running=True)  # fmt: skip


def test_load_reads_pods_spec_and_status(kube: StrictKube) -> None:
    spec = {"primary": "db-2", "failover": {"automatic": False, "detectionSeconds": 9}, "replicas": 5}
    seed(kube, spec, {"primary": "db-1", "errantMembers": ["db-0"]})  # StatefulSet still has 3
    pods, view = asyncio.run(record(kube).load())
    assert pods == PODS  # the StatefulSet's replicas, in ordinal order
    assert (view.current_primary, view.wanted_primary) == ("db-1", "db-2")
    assert (view.automatic_failover, view.detection_seconds) == (False, 9.0)
    assert view.errant == frozenset({"db-0"}) and view.members == ()
    assert view.ack_count == 1


def test_rebuild_errant_needs_the_engine_and_the_spec(kube: StrictKube) -> None:
    assert asyncio.run(record(kube).load())[1].rebuild_errant is False  # MariaDB has no clone
    mysql = registry.get("mysql")
    assert asyncio.run(KubeClusterRecord(kube, REF, mysql).load())[1].rebuild_errant is True  # the default
    seed(kube, {"failover": {"rebuildErrant": False}})
    assert asyncio.run(KubeClusterRecord(kube, REF, mysql).load())[1].rebuild_errant is False


def test_record_rebuild_keeps_the_last_rebuild_per_member_and_other_fields(kube: StrictKube) -> None:
    seed(kube, status={"phase": "Ready", "rebuilds": [{"pod": "db-2", "source": "db-0", "discarded": "",
                                                       "time": "2026-01-01T00:00:00Z"}]})  # fmt: skip
    kube.races = 1
    rec = record(kube)
    asyncio.run(rec.record_rebuild("db-0", "db-1", "u:5"))
    asyncio.run(rec.record_rebuild("db-0", "db-1", "u:6-7"))
    status = status_of(kube)
    assert status["phase"] == "Ready"
    assert [(r["pod"], r["source"], r["discarded"]) for r in status["rebuilds"]] == [
        ("db-2", "db-0", ""),
        ("db-0", "db-1", "u:6-7"),
    ]
    assert status["rebuilds"][1]["time"].endswith("Z")


def test_loop_writes_status_primary_before_any_label(kube: StrictKube) -> None:
    ops = FakeOps(PODS)
    rec = record(kube)
    for _ in range(3):
        asyncio.run(Loop(ops, rec, setcmp).cycle(now=0.0))
    assert status_of(kube)["primary"] == "db-0"
    labels = {p: kube.find(POD, NS, p)["metadata"]["labels"].get(LABEL_ROLE) for p in PODS}  # type: ignore[index]
    assert labels == {"db-0": "primary", "db-1": "replica", "db-2": "replica"}
    # I1: every label write happened while status.primary already named the primary
    assert kube.primary_at_label and set(kube.primary_at_label) == {"db-0"}
    assert ops.calls.index(("promote", "db-0")) >= 0
    events = [o for (_, kind, _, _), o in kube.objects.items() if kind == EVENT.kind]
    assert [e["reason"] for e in events] == ["PrimaryElected"]


def test_write_primary_retries_conflicts_and_keeps_other_fields(kube: StrictKube) -> None:
    seed(kube, status={"phase": "Ready"})
    kube.races = 2
    asyncio.run(record(kube).write_primary("db-1"))
    assert status_of(kube) == {"phase": "Ready", "primary": "db-1"}
    assert [c[0] for c in kube.calls].count("conflict/status") == 2


def test_write_primary_never_returns_when_it_could_not_write(kube: StrictKube) -> None:
    kube.races = 100
    with pytest.raises(Conflict):
        asyncio.run(record(kube, conflict_retries=3).write_primary("db-1"))
    assert "primary" not in status_of(kube)


def test_observation_written_only_when_changed() -> None:
    kube, now = StrictKube(), [0.0]
    seed(kube)
    rec = record(kube, monotonic=lambda: now[0], refresh_seconds=30)
    seen: dict[str, Status | None] = {"db-0": None, "db-1": replica("0-1-5"), "db-2": replica("0-1-5")}

    def write(state: str = "Degraded", members: dict[str, Status | None] = seen) -> int:
        before = len(kube.calls)
        asyncio.run(rec.write_observation(state, members, (), ("db-0 is unreachable or unhealthy",)))
        return sum(1 for c in kube.calls[before:] if c[0] == "patch/status")

    assert write() == 1
    st = status_of(kube)
    assert [m["pod"] for m in st["members"]] == PODS
    assert st["members"][0] == {"pod": "db-0", "role": "unknown", "healthy": False}
    cond = next(c for c in st["conditions"] if c["type"] == CONDITION)
    assert (cond["status"], cond["reason"]) == ("False", "Degraded")
    assert cond["message"] == "db-0 is unreachable or unhealthy"
    assert write() == 0  # nothing changed
    moved = {**seen, "db-1": replica("0-1-9")}
    assert write(members=moved) == 0  # only a position moved, within refresh_seconds
    now[0] = 31.0
    assert write(members=moved) == 1  # ... written once the refresh is due
    assert write("Lost", moved) == 1  # a state change is written at once
    assert write("Lost", moved) == 0


def test_observation_keeps_reconcile_conditions_and_rewrites_a_dropped_one(kube: StrictKube) -> None:
    ready = {"type": "Ready", "status": "True", "reason": "AllMembersReady", "message": ""}
    seed(kube, status={"conditions": [ready]})
    rec = record(kube)
    asyncio.run(rec.write_observation("Healthy", {"db-0": None}, (), ()))
    types = [c["type"] for c in status_of(kube)["conditions"]]
    assert types == ["Ready", CONDITION]
    # reconcile wrote its conditions from a stale body, dropping ours: the next cycle puts it back
    asyncio.run(kube.patch(DBC, NS, NAME, {"status": {"conditions": [ready]}}, "status"))
    asyncio.run(rec.write_observation("Healthy", {"db-0": None}, (), ()))
    assert [c["type"] for c in status_of(kube)["conditions"]] == ["Ready", CONDITION]


def test_label_roles_skips_missing_pods_and_unchanged_labels(kube: StrictKube) -> None:
    rec = record(kube)
    asyncio.run(rec.load())
    asyncio.run(rec.label_roles({"db-0": "primary", "db-9": "replica"}))
    asyncio.run(rec.label_roles({"db-0": "primary"}))
    assert [c for c in kube.calls if c[1] == "Pod"] == [("patch", "Pod", "db-0"), ("patch", "Pod", "db-9")]
    assert kube.find(POD, NS, "db-0")["metadata"]["labels"][LABEL_ROLE] == "primary"  # type: ignore[index]
    assert kube.find(STATEFULSET, NS, NAME) is not None


def test_observation_sets_members_per_role_and_lag_per_member(kube: StrictKube) -> None:
    metrics = OperatorMetrics()
    rec = record(kube, metrics=metrics, reporting_instance="operator-pod-1")

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"namespace": NS, "cluster": NAME, **labels})

    primary = replica("0-1-9").model_copy(
        update={"role": Role.PRIMARY, "read_only": False, "lag_seconds": 0.0}
    )
    lagging = replica("0-1-7").model_copy(update={"lag_seconds": 4.5})
    asyncio.run(rec.write_observation("Healthy", {"db-0": primary, "db-1": lagging, "db-2": None}, (), ()))
    assert [sample("kubetrove_members", role=r) for r in ("primary", "replica", "member", "unknown")] == [
        1.0,
        1.0,
        0.0,
        1.0,
    ]
    assert (
        sample("kubetrove_member_lag_seconds", pod="db-1"),
        sample("kubetrove_member_lag_seconds", pod="db-2"),
    ) == (
        4.5,
        None,
    )
    asyncio.run(rec.write_observation("Healthy", {"db-0": primary, "db-1": None}, (), ()))
    assert sample("kubetrove_member_lag_seconds", pod="db-1") is None  # no stale series for a gone lag
    asyncio.run(rec.event("FailoverSucceeded", "db-1 promoted"))
    (event,) = [e for (_, kind, _, _), e in kube.objects.items() if kind == EVENT.kind]
    assert event["reportingInstance"] == "operator-pod-1"


GIB = 1024**3


def on_volume(st: Status, used_gib: float, available_gib: float, capacity_gib: float = 10) -> Status:
    usage = VolumeUsage(
        used_bytes=int(used_gib * GIB),
        available_bytes=int(available_gib * GIB),
        capacity_bytes=capacity_gib * GIB,
    )
    return st.model_copy(update={"volume": usage})


def test_volume_usage_reaches_members_metrics_and_storage_low(kube: StrictKube) -> None:
    """A member over 80 % (df's Use%: used / (used + available)) sets StorageLow with one Warning Event;
    the figures alone are written at most every refresh_seconds; no report keeps the last condition."""
    metrics, now = OperatorMetrics(), [0.0]
    rec = record(kube, metrics=metrics, monotonic=lambda: now[0], refresh_seconds=30)

    def storage() -> dict[str, Any]:
        return next(c for c in status_of(kube)["conditions"] if c["type"] == STORAGE_CONDITION)

    def warnings() -> list[str]:
        return [e["note"] for (_, kind, _, _), e in kube.objects.items() if kind == EVENT.kind
                and e["reason"] == "StorageLow"]  # fmt: skip

    def observe(**members: Status | None) -> None:
        asyncio.run(
            rec.write_observation("Healthy", {p.replace("_", "-"): s for p, s in members.items()}, (), ())
        )

    observe(db_0=on_volume(replica("0-1-5"), 5, 5), db_1=on_volume(replica("0-1-5"), 2, 7.5), db_2=None)
    st = status_of(kube)
    assert st["members"][0] == {
        "pod": "db-0", "role": "replica", "position": "0-1-5", "healthy": True,
        "volumeUsedBytes": 5 * GIB, "volumeAvailableBytes": 5 * GIB, "volumeCapacityBytes": 10 * GIB,
    }  # fmt: skip
    assert "volumeUsedBytes" not in st["members"][2]  # unreachable: not measured
    assert (storage()["status"], storage()["reason"]) == ("False", "BelowThreshold")
    assert storage()["message"] == "every measured data volume at or under 80% (fullest 50%)"

    def sample(name: str, pod: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"namespace": NS, "cluster": NAME, "pod": pod})

    assert sample("kubetrove_member_volume_used_bytes", "db-1") == 2 * GIB
    assert sample("kubetrove_member_volume_capacity_bytes", "db-0") == 10 * GIB
    assert sample("kubetrove_member_volume_available_bytes", "db-2") is None

    # 8.5 GiB used, 1 GiB writable (0.5 GiB is root's reserve): 89 % by df's count, over 80 %.
    observe(db_0=on_volume(replica("0-1-5"), 8.5, 1), db_1=on_volume(replica("0-1-5"), 2, 7.5), db_2=None)
    low = storage()
    assert (low["status"], low["reason"]) == ("True", "VolumeAboveThreshold")
    assert low["message"] == "data volume over 80% used: db-0 89%"
    assert warnings() == ["data volume over 80% used: db-0 89%"]
    # Still over, a bit fuller: no second Event, the new figures wait for the refresh.
    observe(db_0=on_volume(replica("0-1-5"), 8.6, 0.9), db_1=on_volume(replica("0-1-5"), 2, 7.5), db_2=None)
    assert storage()["message"] == "data volume over 80% used: db-0 89%" and len(warnings()) == 1
    now[0] = 31.0
    observe(db_0=on_volume(replica("0-1-5"), 8.6, 0.9), db_1=on_volume(replica("0-1-5"), 2, 7.5), db_2=None)
    assert storage()["message"] == "data volume over 80% used: db-0 91%" and len(warnings()) == 1
    assert sample("kubetrove_member_volume_used_bytes", "db-0") == int(8.6 * GIB)
    # Every agent unreachable: the last known condition stays, the gauges drop their series.
    observe(db_0=None, db_1=None, db_2=None)
    assert storage()["status"] == "True"
    assert sample("kubetrove_member_volume_used_bytes", "db-0") is None
    # Grown (or cleaned up): back to False at once.
    observe(db_0=on_volume(replica("0-1-5"), 8.6, 11.4, 20), db_1=None, db_2=None)
    assert (storage()["status"], storage()["reason"]) == ("False", "BelowThreshold")
