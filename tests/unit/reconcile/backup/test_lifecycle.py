"""DatabaseBackup lifecycle with the fake Kube and a fake agent: start, poll, finish, restart, 404, errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kubetrove.agent.protocol import BackupMethod, NodeTokens
from kubetrove.api.backup import BackupPhase, BackupSpec
from kubetrove.api.resources import BACKUP, parse_body
from kubetrove.k8s.kinds import CUSTOM, EVENT
from kubetrove.reconcile.backup.lifecycle import MEMBER_ANNOTATION, delete_data, reconcile_backup
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.backup.fakes import NS, backup, pod, seed, source
from tests.unit.reconcile.conftest import LOG
from tests.unit.reconcile.fake_kube import FakeKube

DB_BACKUPS = CUSTOM[BACKUP.kind]


@pytest.fixture
def agent(agents: FakeAgents) -> FakeAgents:
    return agents


@pytest.fixture
def bdeps(deps: Deps) -> Deps:
    return dataclasses.replace(deps, agent_url=lambda ns, name, ip, tls=None: f"http://{name}:8443")


async def run(kube: FakeKube, deps: Deps, name: str = "bk") -> Any:
    """One handler pass over the live object, as handlers/backups.py does it."""
    live = kube.find(DB_BACKUPS, NS, name)
    assert live is not None
    parsed = parse_body(BACKUP, live, BackupSpec)
    return await reconcile_backup(
        parsed, live["metadata"]["creationTimestamp"], live.get("status"), deps, LOG
    )


def live(kube: FakeKube, name: str = "bk") -> dict[str, Any]:
    obj = kube.find(DB_BACKUPS, NS, name)
    assert obj is not None
    return obj


def status(kube: FakeKube, name: str = "bk") -> dict[str, Any]:
    return (kube.find(DB_BACKUPS, NS, name) or {}).get("status") or {}


def sample(deps: Deps, name: str, engine: str = "mariadb", method: str = "physical") -> float | None:
    """A backup metric as injected into ``deps`` (each test has a registry of its own)."""
    return deps.metrics.registry.get_sample_value(name, {"engine": engine, "method": method})


def reasons(kube: FakeKube) -> list[str]:
    return [e["reason"] for (_, kind, _, _), e in kube.objects.items() if kind == EVENT.kind]


async def test_lifecycle_on_a_replica_to_completed(kube: FakeKube, bdeps: Deps, agent: FakeAgents) -> None:
    seed(kube, source("DatabaseCluster"), pod("db-0", role="primary"), pod("db-1", role="replica"), backup())
    kube.put({**backup(), "spec": {"source": {"kind": "DatabaseCluster", "name": "db"}}})
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    (request,) = agent.of("start_backup")
    assert request.id == "uid-bk"  # the uid: a restarted operator asks for the same backup
    assert request.method is BackupMethod.PHYSICAL  # auto -> mariadb's preferred
    assert request.created_at == "2026-01-02T03:04:00Z"
    assert request.target.s3 is not None and request.target.s3.secret_access_key == "SK"
    assert agent.urls == ["http://db-1:8443"]  # the replica, not the primary
    assert live(kube)["metadata"]["annotations"][MEMBER_ANNOTATION] == "db-1"
    assert status(kube)["phase"] == "Running"
    agent.finish("uid-bk")
    done = await run(kube, bdeps)
    assert done.phase is BackupPhase.COMPLETED
    st = status(kube)
    assert (st["sizeBytes"], st["sha256"], st["position"]) == (1234, "ab" * 32, "0-1-42")
    assert (st["method"], st["location"], st["throughputMibPerS"]) == (
        "physical/mariabackup",
        "s3://b/uid-bk/",
        50.0,
    )
    assert {c["type"]: c["status"] for c in st["conditions"]} == {
        "Progressing": "False",
        "Ready": "True",
        "Failed": "False",
    }
    assert reasons(kube) == ["BackupStarted", "BackupCompleted"]
    # The metrics of a completed backup: its size, and its duration from startedAt to completedAt.
    assert sample(bdeps, "kubetrove_backup_bytes_total") == 1234
    assert sample(bdeps, "kubetrove_backup_duration_seconds_sum") == 60.0
    assert sample(bdeps, "kubetrove_backup_duration_seconds_count") == 1
    assert sample(bdeps, "kubetrove_backup_failures_total") is None
    writes = len(kube.writes())
    assert (await run(kube, bdeps)).phase is BackupPhase.COMPLETED  # final: nothing more is done
    assert len(kube.writes()) == writes and len(agent.of("start_backup")) == 1
    assert sample(bdeps, "kubetrove_backup_duration_seconds_count") == 1  # counted once


async def test_operator_restart_polls_the_pinned_member_without_a_second_post(
    kube: FakeKube, bdeps: Deps, agent: FakeAgents
) -> None:
    seed(kube, source(), pod("db-0"), pod("db-9"), backup())
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    pinned = agent.urls[-1]
    with pytest.raises(NotReady):  # a new operator process: same object, same status
        await run(kube, bdeps)
    assert agent.urls == [pinned, pinned]
    assert len(agent.of("start_backup")) == 1  # GET found it: no second POST
    assert reasons(kube) == ["BackupStarted"]


async def test_404_after_an_agent_restart_re_posts_the_same_id(
    kube: FakeKube, bdeps: Deps, agent: FakeAgents
) -> None:
    seed(kube, source(), pod("db-0"), backup())
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    agent.forget()
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    assert [r.id for r in agent.of("start_backup")] == ["uid-bk", "uid-bk"]


async def test_agent_failure_is_failed_with_the_error(kube: FakeKube, bdeps: Deps, agent: FakeAgents) -> None:
    seed(kube, source(), pod("db-0"), backup())
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    agent.finish("uid-bk", phase="Failed", error="mariabackup exited 1: disk full", completed_at=None)
    assert (await run(kube, bdeps)).phase is BackupPhase.FAILED
    assert status(kube)["error"] == "mariabackup exited 1: disk full"
    assert reasons(kube) == ["BackupStarted", "BackupFailed"]
    assert sample(bdeps, "kubetrove_backup_failures_total") == 1
    assert sample(bdeps, "kubetrove_backup_bytes_total") is None


@pytest.mark.parametrize(
    ("objects", "spec", "message"),
    [
        ((), {}, "source DatabaseInstance ns/db not found"),
        ((source(backup={}),), {}, "no storage: set spec.storage or the source's spec.backup.storage"),
        (
            (source(backup={"storage": {"s3": {"bucket": "b", "credentialsSecretRef": "nope"}}}),),
            {},
            "credentials Secret ns/nope not found",
        ),
        (
            (source(backup={"storage": {"pvc": {"claimName": "mine"}}}),),
            {"storage": {"pvc": {"claimName": "other"}}},
            "PersistentVolumeClaim other is not mounted in the pods: only the claim named in the instance's"
            " spec.backup.storage.pvc is; name it there",
        ),
        (
            (source(datastore={"type": "cassandra", "version": "5.0"}),),
            {"method": "logical"},
            "cassandra has no logical backup method",
        ),
    ],
)
async def test_refusals_are_failed_at_once(
    kube: FakeKube,
    bdeps: Deps,
    agent: FakeAgents,
    objects: tuple[Any, ...],
    spec: dict[str, Any],
    message: str,
) -> None:
    seed(kube, *objects, backup(**spec))
    assert (await run(kube, bdeps)).phase is BackupPhase.FAILED
    assert status(kube)["error"] == message
    assert [c["message"] for c in status(kube)["conditions"] if c["type"] == "Failed"] == [message]
    assert reasons(kube) == ["BackupFailed"] and agent.of("start_backup") == []
    # Labelled as far as known: the engine once the source is read, the method once it is chosen.
    failures = [m for m in bdeps.metrics.backup_failures.collect()[0].samples if m.name.endswith("_total")]
    assert [m.value for m in failures] == [1.0]
    if objects:
        assert failures[0].labels["engine"] == objects[0]["spec"]["datastore"]["type"]
    else:
        assert failures[0].labels == {"engine": "unknown", "method": "auto"}


async def test_agent_refusing_the_method_is_failed(kube: FakeKube, bdeps: Deps, agent: FakeAgents) -> None:
    seed(kube, source(), pod("db-0"), backup())
    agent.refuse("start_backup", 400, "unsupported_method", "no physical")
    assert (await run(kube, bdeps)).phase is BackupPhase.FAILED
    assert "unsupported_method: no physical" in status(kube)["error"]


async def test_no_ready_member_waits_pending(kube: FakeKube, bdeps: Deps, agent: FakeAgents) -> None:
    seed(kube, source(), pod("db-0", ready=False), backup())
    with pytest.raises(NotReady, match="no ready pod"):
        await run(kube, bdeps)
    assert agent.of("start_backup") == [] and status(kube) == {}


async def test_deletion_policy(kube: FakeKube, bdeps: Deps, agent: FakeAgents) -> None:
    seed(kube, source(), pod("db-0"), backup(), backup("gone", deletionPolicy="Delete"))
    kube.put(
        {**backup("gone", deletionPolicy="Delete"), "status": {"phase": "Completed", "location": "s3://b/x/"}}
    )
    kube.put({**backup(), "status": {"phase": "Completed", "location": "s3://b/y/"}})
    for name, removed in (("bk", False), ("gone", True)):
        obj = live(kube, name)
        parsed = parse_body(BACKUP, obj, BackupSpec)
        assert await delete_data(parsed, obj["status"], bdeps, LOG) is removed
    ((backup_id, target),) = agent.of("delete_backup")
    assert backup_id == "uid-gone" and target.s3 is not None and target.s3.bucket == "b"


async def test_a_pvc_target_is_the_directory_where_the_claim_is_mounted(
    kube: FakeKube, bdeps: Deps, agent: FakeAgents
) -> None:
    seed(kube, source(backup={"storage": {"pvc": {"claimName": "backups"}}}), pod("db-0"), backup())
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    (request,) = agent.of("start_backup")
    assert request.target.directory is not None
    assert request.target.directory.path == "/var/lib/kubetrove/backups/backups"


def ring_pod(name: str, ready: bool = True) -> dict[str, Any]:
    p = pod(name, ready=ready)
    p["metadata"]["labels"]["app.kubernetes.io/name"] = "cassandra"
    return p


async def test_a_rings_backup_is_one_snapshot_per_node_listed_in_status_nodes(
    kube: FakeKube, bdeps: Deps, agent: FakeAgents
) -> None:
    ring = source("DatabaseCluster", datastore={"type": "cassandra", "version": "5.0"})
    seed(kube, ring, ring_pod("db-0"), ring_pod("db-1"), ring_pod("db-2", ready=False))
    kube.put({**backup(), "spec": {"source": {"kind": "DatabaseCluster", "name": "db"}}})
    with pytest.raises(NotReady, match="needs every member ready: db-2 not yet"):
        await run(kube, bdeps)
    assert agent.of("start_backup") == []  # not one node's snapshot without the others
    kube.put(ring_pod("db-2"))
    with pytest.raises(NotReady, match="Running on 3 nodes"):
        await run(kube, bdeps)
    assert [r.id for r in agent.of("start_backup")] == ["uid-bk-0", "uid-bk-1", "uid-bk-2"]
    assert agent.urls == ["http://db-0:8443", "http://db-1:8443", "http://db-2:8443"]
    assert [n["phase"] for n in status(kube)["nodes"]] == ["Running"] * 3
    tokens = [str(t) for t in range(16)]
    for i in range(3):
        who = {"host_id": f"h{i}", "address": f"10.0.0.{i}", "tokens": tokens}
        agent.finish(f"uid-bk-{i}", ring_node=NodeTokens.model_validate(who), sha256=f"{i}" * 64)
        if i < 2:
            with pytest.raises(NotReady):
                await run(kube, bdeps)
    done = await run(kube, bdeps)
    assert done.phase is BackupPhase.COMPLETED
    st = status(kube)
    assert st["sizeBytes"] == 3 * 1234 and "sha256" not in st  # each node's checksum is its own
    fields = ("pod", "id", "hostId", "address", "tokens", "sha256")
    assert [tuple(n[f] for f in fields) for n in st["nodes"]] == [
        (f"db-{i}", f"uid-bk-{i}", f"h{i}", f"10.0.0.{i}", 16, f"{i}" * 64) for i in range(3)
    ]
    # Deleting it (policy Delete) removes every node's stored snapshot.
    obj = live(kube)
    obj["spec"]["deletionPolicy"] = "Delete"
    parsed = parse_body(BACKUP, obj, BackupSpec)
    assert await delete_data(parsed, obj["status"], bdeps, LOG)
    assert [bid for bid, _ in agent.of("delete_backup")] == ["uid-bk-0", "uid-bk-1", "uid-bk-2"]


async def test_a_ring_node_that_fails_or_names_no_tokens_fails_the_whole_backup(
    kube: FakeKube, bdeps: Deps, agent: FakeAgents
) -> None:
    ring = source("DatabaseCluster", replicas=2, datastore={"type": "cassandra", "version": "5.0"})
    seed(kube, ring, ring_pod("db-0"), ring_pod("db-1"))
    kube.put({**backup(), "spec": {"source": {"kind": "DatabaseCluster", "name": "db"}}})
    with pytest.raises(NotReady):
        await run(kube, bdeps)
    agent.finish("uid-bk-0")  # no ring_node: nobody could tell which ranges it holds
    agent.finish("uid-bk-1", phase=BackupPhase.FAILED, error="nodetool snapshot failed")
    done = await run(kube, bdeps)
    assert done.phase is BackupPhase.FAILED
    assert done.error == (
        "db-1: nodetool snapshot failed; db-0: its backup does not say which node and tokens it holds"
    )
