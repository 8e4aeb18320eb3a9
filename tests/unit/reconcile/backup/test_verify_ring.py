"""Restore verification of a ring's backup (one snapshot per node) against the fake Kube and agents.

The throwaway is a DatabaseCluster of as many nodes (member i restores node i's snapshot with its tokens);
every member's agent is asked about the snapshot it restored; one member's failure fails the whole.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from kubetrove.agent.protocol import TableCheck, TableStats, VerifyReply
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, parse_body
from kubetrove.api.specs import ClusterSpec
from kubetrove.k8s.kinds import CUSTOM
from kubetrove.reconcile.backup.verify import verify_pass
from kubetrove.reconcile.context import Deps
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.backup.fakes import NS, backup, pod, seed, source
from tests.unit.reconcile.backup.test_verify import condition, events, requests, token_secret, verification
from tests.unit.reconcile.conftest import LOG, NOW
from tests.unit.reconcile.fake_kube import FakeKube

BACKUPS, CLUSTERS, INSTANCES, OWNER = CUSTOM[BACKUP.kind], CUSTOM[CLUSTER.kind], CUSTOM[INSTANCE.kind], "db"
RING = {"ks.t": TableStats(rows=400)}
NODES = 3


def ring_reply(rows: int = 400, checks: list[TableCheck] | None = None) -> VerifyReply:
    return VerifyReply(
        engine="cassandra",
        check_tool="nodetool verify",
        recorded=RING,
        observed={"ks.t": TableStats(rows=rows)},
        checks=checks if checks is not None else [TableCheck(table="ks.t", ok=True)],
    )


@pytest.fixture
def vdeps(deps: Deps, agents: FakeAgents) -> Deps:
    agents.verify_reply = ring_reply()
    return dataclasses.replace(deps, agent_url=lambda ns, name, ip, tls=None: f"http://{name}:8432")


def owner_body() -> dict[str, Any]:
    body = source("DatabaseCluster", OWNER, datastore={"type": "cassandra", "version": "5.0"})
    body["spec"]["backup"]["verify"] = True
    return body


def ring_backup() -> dict[str, Any]:
    nodes = [
        {"pod": f"db-{i}", "id": f"uid-bk-{i}", "phase": "Completed", "hostId": f"h{i}", "tokens": 16}
        for i in range(NODES)
    ]
    status = {
        "phase": "Completed",
        "completedAt": "2026-01-02T02:00:00Z",
        "engine": "cassandra",
        "engineVersion": "5.0.9",
        "nodes": nodes,
    }
    body = backup("bk")
    body["spec"] = {"source": {"kind": "DatabaseCluster", "name": OWNER}}
    return {**body, "status": status}


def member(name: str, ready: bool = True) -> dict[str, Any]:
    obj = pod(name, owner="bk-verify", ready=ready)
    obj["metadata"]["labels"]["app.kubernetes.io/name"] = "cassandra"
    return obj


def make_ready(kube: FakeKube, ready: int = NODES) -> None:
    """The throwaway ring restored and Ready (what its own reconcile would write)."""
    obj = kube.find(CLUSTERS, NS, "bk-verify")
    assert obj is not None
    obj["status"] = {
        "phase": "Ready",
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllMembersReady", "message": "3/3"}],
    }
    for i in range(NODES):
        kube.put(member(f"bk-verify-{i}", ready=i < ready))
    kube.put(token_secret("bk-verify"))


async def run(kube: FakeKube, deps: Deps, minutes: float = 0) -> None:
    live = kube.find(CLUSTERS, NS, OWNER)
    assert live is not None
    later = dataclasses.replace(deps, clock=lambda: NOW + datetime.timedelta(minutes=minutes))
    owner = parse_body(CLUSTER, live, ClusterSpec)
    await verify_pass(owner, later, LOG, datetime.timedelta(minutes=30))


async def test_a_rings_backup_is_restored_into_a_ring_and_every_node_is_checked(
    kube: FakeKube, vdeps: Deps, agents: FakeAgents
) -> None:
    seed(kube, owner_body(), ring_backup())
    await run(kube, vdeps)
    assert verification(kube) == {
        "phase": "Restoring",
        "instance": "bk-verify",
        "startedAt": "2026-01-02T03:04:05Z",
    }
    assert kube.find(INSTANCES, NS, "bk-verify") is None
    ring = kube.find(CLUSTERS, NS, "bk-verify")
    assert ring is not None and ring["spec"]["replicas"] == NODES
    assert ring["spec"]["restoreFrom"] == {"backup": "bk"}
    assert ring["metadata"]["ownerReferences"][0]["uid"] == "uid-bk"
    assert ("bk", "Normal", "BackupVerificationStarted") in events(kube)

    make_ready(kube, ready=2)  # Ready, but one node's pod is not: all nodes are needed, wait
    await run(kube, vdeps, minutes=5)
    assert verification(kube)["phase"] == "Checking" and requests(agents) == []

    make_ready(kube)
    await run(kube, vdeps, minutes=6)
    asked = [(url, r.backup_id) for url, r in requests(agents)]
    assert asked == [(f"http://bk-verify-{i}:8432", f"uid-bk-{i}") for i in range(NODES)]
    v = verification(kube)
    assert (v["phase"], v["tables"], v["restoreSeconds"]) == ("Verified", 1, 300.0)
    assert v["message"] == (
        "1 tables match the backup's row counts (0 also by checksum); nodetool verify OK;"
        " on each of the 3 nodes (bk-verify-0, bk-verify-1, bk-verify-2)"
    )
    for obj in (kube.find(BACKUPS, NS, "bk"), kube.find(CLUSTERS, NS, OWNER)):
        c = condition(obj)
        assert (c["status"], c["reason"]) == ("True", "Verified")
    assert (OWNER, "Normal", "BackupVerified") in events(kube)
    assert kube.find(CLUSTERS, NS, "bk-verify") is None  # the throwaway ring is deleted
    owner = kube.find(CLUSTERS, NS, OWNER)
    assert owner is not None and owner["status"]["recovery"]["restoreSeconds"] == 300.0


async def test_a_node_whose_data_is_missing_fails_the_verification(
    kube: FakeKube, vdeps: Deps, agents: FakeAgents
) -> None:
    seed(kube, owner_body(), ring_backup())
    await run(kube, vdeps)
    make_ready(kube)
    agents.verify_replies["http://bk-verify-2:8432"] = ring_reply(rows=262)
    await run(kube, vdeps, minutes=4)
    v = verification(kube)
    assert (v["phase"], v["reason"]) == ("Failed", "CountsDiffer")
    assert v["message"] == "bk-verify-2: ks.t: 400 rows at backup time, 262 restored"
    c = condition(kube.find(CLUSTERS, NS, OWNER))
    assert (c["status"], c["reason"]) == ("False", "CountsDiffer")
    assert (OWNER, "Warning", "BackupVerificationFailed") in events(kube)
    assert kube.find(CLUSTERS, NS, "bk-verify") is None


async def test_a_node_backup_that_cannot_be_restored_fails_as_restore_failed(
    kube: FakeKube, vdeps: Deps, agents: FakeAgents
) -> None:
    seed(kube, owner_body(), ring_backup())
    await run(kube, vdeps)
    assert kube.find(CLUSTERS, NS, "bk-verify") is not None
    lost = member("bk-verify-2", ready=False)  # its snapshot is gone from the store: its restore refuses
    terminated = {"exitCode": 2, "reason": "Error", "message": "backup uid-bk-2 is missing or incomplete"}
    lost["status"]["initContainerStatuses"] = [
        {"name": "restore", "restartCount": 3, "lastState": {"terminated": terminated}}
    ]
    kube.put(lost)
    await run(kube, vdeps, minutes=3)
    v = verification(kube)
    assert (v["phase"], v["reason"]) == ("Failed", "RestoreFailed")
    assert "bk-verify-2" in v["message"] and "uid-bk-2 is missing" in v["message"]
    assert requests(agents) == [] and kube.find(CLUSTERS, NS, "bk-verify") is None


async def test_a_leftover_throwaway_ring_of_an_ended_verification_is_deleted(
    kube: FakeKube, vdeps: Deps
) -> None:
    seed(kube, owner_body(), ring_backup())
    await run(kube, vdeps)
    assert kube.find(CLUSTERS, NS, "bk-verify") is not None
    live = kube.find(BACKUPS, NS, "bk")
    assert live is not None  # the operator died after writing the verdict, before deleting the ring
    live["status"]["verification"].update({"phase": "Failed", "completedAt": "2026-01-02T03:05:00Z"})
    await run(kube, vdeps, minutes=1)
    assert kube.find(CLUSTERS, NS, "bk-verify") is None
