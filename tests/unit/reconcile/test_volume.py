"""The Volume phase of a DatabaseInstance on the fake API server and fake agents: status.members, StorageLow,
the volume series, and storage autogrow (the same executor as a cluster's, kubetrove/autogrow.py)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrove.agent.protocol import Role, Status, VolumeUsage
from kubetrove.autogrow import CONDITION
from kubetrove.k8s.kinds import CUSTOM, EVENT, POD, PVC
from kubetrove.observation import STORAGE_CONDITION
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube
from tests.unit.reconcile.test_users import seed_members

DBI = CUSTOM["DatabaseInstance"]
URL = "http://10.0.0.1:8432"
GIB = 2**30
AUTOGROW = {"size": "1Gi", "storageClassName": "standard",
            "autogrow": {"threshold": 80, "increment": "1Gi", "maximum": "3Gi"}}  # fmt: skip


def usage(percent: float, gib: int = 1) -> VolumeUsage:
    used = int(percent * gib * GIB / 100)
    return VolumeUsage(used_bytes=used, available_bytes=gib * GIB - used, capacity_bytes=gib * GIB)


def answer(agents: FakeAgents, percent: float, gib: int = 1) -> None:
    """The member's agent answers GET /v1/status with its volume this full."""
    agents.statuses[URL] = Status(
        engine="mariadb", version="10.11", role=Role.STANDALONE, read_only=False, healthy=True,
        position="0-1-42", volume=usage(percent, gib),
    )  # fmt: skip


def status(kube: FakeKube) -> dict[str, Any]:
    return kube.find(DBI, "ns", "db")["status"]  # type: ignore[no-any-return]


def condition(kube: FakeKube, kind: str) -> dict[str, Any] | None:
    return next((c for c in status(kube).get("conditions") or [] if c["type"] == kind), None)


def events(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [(e["reason"], e["type"], e["note"]) for k, e in kube.objects.items() if k[1] == EVENT.kind]


def status_writes(kube: FakeKube) -> int:
    return sum(1 for verb, kind, _ in kube.calls if verb == "patch/status" and kind == DBI.kind)


def requested(kube: FakeKube) -> str:
    return str(kube.find(PVC, "ns", "data-db-0")["spec"]["resources"]["requests"]["storage"])


def series(deps: Deps, name: str) -> float | None:
    labels = {"namespace": "ns", "cluster": "db", "pod": "db-0"}
    return deps.metrics.registry.get_sample_value(f"kubetrove_member_volume_{name}_bytes", labels)


async def start(kube: FakeKube, deps: Deps, **spec: Any) -> None:
    """A created instance whose member runs: its pod has an IP, its StatefulSet is settled."""
    kube.put(body(**spec))
    await run.reconcile(parsed(**spec), None, deps, LOG)
    seed_members(kube)
    claim = {"resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "standard"}
    kube.put({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
              "metadata": {"name": "data-db-0", "namespace": "ns"}, "spec": claim,
              "status": {"capacity": {"storage": "1Gi"}}})  # fmt: skip
    kube.put({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"},
              "provisioner": "x", "allowVolumeExpansion": True})  # fmt: skip


async def refresh(kube: FakeKube, deps: Deps, **spec: Any) -> None:
    await run.refresh(parsed(**spec), status(kube), deps, LOG)


async def test_the_member_and_its_volume_are_in_the_status(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps)
    answer(agents, 50)
    await refresh(kube, deps)
    (member,) = status(kube)["members"]
    assert member == {
        "pod": "db-0",
        "role": "primary",  # standalone and writable
        "healthy": True,
        "volumeUsedBytes": GIB // 2,
        "volumeAvailableBytes": GIB // 2,
        "volumeCapacityBytes": GIB,
    }  # no position or lag: an instance has no replicas
    low = condition(kube, STORAGE_CONDITION)
    assert low is not None and (low["status"], low["reason"]) == ("False", "BelowThreshold")
    assert status(kube)["phase"] == "Ready"
    assert (series(deps, "used"), series(deps, "capacity")) == (GIB // 2, GIB)
    assert agents.of("volume") == []  # its status answered: not asked alone
    assert condition(kube, CONDITION) is None  # no autogrow, no condition


async def test_figures_alone_are_rewritten_when_the_fill_moved_a_whole_percent(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps)
    answer(agents, 50)
    await refresh(kube, deps)
    writes = status_writes(kube)
    answer(agents, 50.5)
    await refresh(kube, deps)
    assert status_writes(kube) == writes  # nothing written: 1000 idle instances write nothing
    assert status(kube)["members"][0]["volumeUsedBytes"] == GIB // 2
    answer(agents, 51.5)
    await refresh(kube, deps)
    assert status_writes(kube) == writes + 1
    assert status(kube)["members"][0]["volumeUsedBytes"] == int(51.5 * GIB / 100)


async def test_a_refresh_from_an_older_body_keeps_a_condition_written_meanwhile(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    # The refresh starts from the body it was given; a reconcile then writes UsersReady; the Volume
    # phase writes the member (its write reads the newer status). The runner's write that follows must
    # not put the older conditions back (it did: the e2e instance never became settled).
    await start(kube, deps)
    answer(agents, 50)
    older = dict(status(kube))
    users_ready = {"type": "UsersReady", "status": "True", "reason": "Applied", "message": "",
                   "lastTransitionTime": "2026-12-06T00:00:00Z", "observedGeneration": 1}  # fmt: skip
    obj = kube.find(DBI, "ns", "db")
    obj["status"] = {**older, "conditions": [*older.get("conditions", []), users_ready]}
    await run.refresh(parsed(), older, deps, LOG)
    assert condition(kube, "UsersReady") == users_ready
    assert status(kube)["members"][0]["pod"] == "db-0"


async def test_storage_low_turns_true_with_one_warning(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps)
    answer(agents, 85)
    await refresh(kube, deps)
    await refresh(kube, deps)
    low = condition(kube, STORAGE_CONDITION)
    assert low is not None and (low["status"], low["reason"]) == ("True", "VolumeAboveThreshold")
    assert low["message"] == "data volume over 80% used: db-0 85%"
    assert [(r, t) for r, t, _ in events(kube)] == [("StorageLow", "Warning")]
    assert status(kube)["phase"] == "Ready"  # the runner's write kept what the phase wrote


async def test_an_unreachable_agent_leaves_no_figure_and_storage_low_as_it_was(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps)
    answer(agents, 85)
    await refresh(kube, deps)
    agents.unreachable()
    await refresh(kube, deps)
    assert status(kube)["members"] == []  # nothing reported: readers fall back on the Ready condition
    low = condition(kube, STORAGE_CONDITION)
    assert low is not None and low["status"] == "True"  # says nothing new about the disk
    assert series(deps, "used") is None  # no stale figure for an alert to fire on


async def test_no_pod_yet_calls_no_agent(kube: FakeKube, deps: Deps, agents: FakeAgents) -> None:
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    await refresh(kube, deps)
    assert agents.attempts == [] and "members" not in status(kube)


async def test_an_instance_grows_its_volume_like_a_cluster(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps, storage=AUTOGROW)
    answer(agents, 50)
    await refresh(kube, deps, storage=AUTOGROW)
    cond = condition(kube, CONDITION)
    assert cond is not None and (cond["status"], cond["reason"]) == ("True", "BelowThreshold")
    answer(agents, 85)
    await refresh(kube, deps, storage=AUTOGROW)
    assert requested(kube) == "2Gi"
    storage = status(kube)["storage"]
    assert storage["size"] == "2Gi" and storage["lastGrowth"]["member"] == "db-0"
    assert [(r, t) for r, t, _ in events(kube)] == [("StorageLow", "Warning"), ("StorageGrown", "Normal")]
    cond = condition(kube, CONDITION)
    assert cond is not None and cond["reason"] == "Growing"
    await refresh(kube, deps, storage=AUTOGROW)  # the claim has not grown yet: no stacking
    assert requested(kube) == "2Gi" and condition(kube, CONDITION)["reason"] == "ExpansionInProgress"  # type: ignore[index]
    kube.find(PVC, "ns", "data-db-0")["status"] = {"capacity": {"storage": "2Gi"}}
    answer(agents, 43, gib=2)
    await refresh(kube, deps, storage=AUTOGROW)
    assert condition(kube, CONDITION)["reason"] == "BelowThreshold"  # type: ignore[index]
    assert condition(kube, STORAGE_CONDITION)["status"] == "False"  # type: ignore[index]
    assert status(kube)["phase"] == "Ready"


async def test_a_full_disk_instance_is_grown_then_restarted_once(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    """The engine stopped on a full disk: GET /v1/status fails (503), GET /v1/volume still answers."""
    await start(kube, deps, storage=AUTOGROW)
    pod = kube.find(POD, "ns", "db-0")
    pod["status"]["containerStatuses"] = [
        {"name": "engine", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
        {"name": "agent", "ready": True, "state": {"running": {}}},
    ]
    agents.volumes[URL] = usage(100)
    await refresh(kube, deps, storage=AUTOGROW)
    assert requested(kube) == "2Gi"
    member = status(kube)["members"][0]
    assert (member["healthy"], member["volumeAvailableBytes"]) == (False, 0)  # measured alone
    await refresh(kube, deps, storage=AUTOGROW)  # not expanded yet: not restarted yet
    assert kube.find(POD, "ns", "db-0") is not None
    kube.find(PVC, "ns", "data-db-0")["status"] = {"capacity": {"storage": "2Gi"}}
    agents.volumes[URL] = usage(50, gib=2)
    await refresh(kube, deps, storage=AUTOGROW)
    assert kube.find(POD, "ns", "db-0") is None  # deleted once: its engine starts on the larger volume
    assert status(kube)["storage"]["lastGrowth"]["restarted"] == ["db-0"]
    assert [r for r, _, _ in events(kube)][-2:] == ["StorageGrown", "StorageRestartedMember"]


async def test_a_class_without_expansion_is_a_false_condition(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps, storage=AUTOGROW)
    kube.put({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "standard"},
              "provisioner": "x", "allowVolumeExpansion": False})  # fmt: skip
    answer(agents, 90)
    await refresh(kube, deps, storage=AUTOGROW)
    cond = condition(kube, CONDITION)
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "ExpansionNotAllowed")
    assert requested(kube) == "1Gi"
    assert ("StorageAutogrowRefused", "Warning") in [(r, t) for r, t, _ in events(kube)]


async def test_the_autogrow_timer_runs_the_volume_phase_alone(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps, storage=AUTOGROW)
    answer(agents, 85)
    await run.observe_volume(parsed(storage=AUTOGROW), status(kube), deps, LOG)
    assert requested(kube) == "2Gi" and status(kube)["storage"]["size"] == "2Gi"
    assert status(kube)["members"][0]["pod"] == "db-0"


async def test_the_autogrow_timer_leaves_a_refused_spec_alone(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps, storage=AUTOGROW)
    answer(agents, 85)
    refused = {**status(kube), "phase": "Failed"}
    await run.observe_volume(parsed(storage=AUTOGROW), refused, deps, LOG)
    assert agents.attempts == [] and requested(kube) == "1Gi"


async def test_turning_autogrow_off_removes_its_condition(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    await start(kube, deps, storage=AUTOGROW)
    answer(agents, 50)
    await refresh(kube, deps, storage=AUTOGROW)
    assert condition(kube, CONDITION) is not None
    await refresh(kube, deps, storage={"size": "1Gi", "storageClassName": "standard"})
    assert condition(kube, CONDITION) is None
    assert condition(kube, STORAGE_CONDITION) is not None


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
async def test_deleting_the_instance_forgets_its_volume_series(
    kube: FakeKube, deps: Deps, agents: FakeAgents, policy: str
) -> None:
    await start(kube, deps)
    answer(agents, 50)
    await refresh(kube, deps)
    assert series(deps, "used") is not None
    await run.delete(parsed(deletionPolicy={"volumes": policy}), deps, LOG)
    assert [series(deps, n) for n in ("used", "available", "capacity")] == [None, None, None]
