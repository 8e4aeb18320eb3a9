"""spec.restoreFrom: refused with a clear message (no child created) or handed to the init container."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from kubetrove.agent.protocol import BackupTarget, DirectoryTarget
from kubetrove.api.common import Engine
from kubetrove.api.resources import CLUSTER, INSTANCE
from kubetrove.k8s.kinds import EVENT, SECRET, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.backup.restore import catalog_version, check_backup, restore_request
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import InvalidSpec
from tests.unit.reconcile.backup.fakes import NS, b64, backup, seed, source
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

DONE = {
    "phase": "Completed",
    "engine": "mariadb",
    "engineVersion": "10.11.16-MariaDB",
    "method": "physical/mariabackup",
}


def stored(**status: Any) -> dict[str, Any]:
    """A Completed backup "nightly" of instance "src" (the restores below create "db")."""
    return {**backup("nightly", source_name="src"), "status": {**DONE, **status}}


def credentials(name: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-credentials", "namespace": NS},
        "data": {k.replace("_", "-"): b64(v) for k, v in values.items()},
    }


@pytest.mark.parametrize(
    ("engine", "version", "key"),
    [
        ("postgresql", "17.4", "17"),
        ("postgresql", "17", "17"),
        ("postgresql", "160.1", None),
        ("mariadb", "10.11.16-MariaDB", "10.11"),
        ("cassandra", "5.0.9", "5.0"),
        ("cassandra", "5.0.8", "5.0.8"),  # the pinned patch release: the longest key wins
        ("cassandra", "4.1.10", None),  # not in the catalog: no 4.1 ran here
        ("mongodb", "6.0.5", "6.0"),
        ("mongodb", "7.0.12", None),  # not in the catalog (docs/clustering.md, MongoDB),
        ("mariadb", "garbage", None),
    ],
)
def test_catalog_version_of_a_running_engine(engine: str, version: str, key: str | None) -> None:
    assert catalog_version(Engine(engine), version) == key


@pytest.mark.parametrize(
    ("body", "version", "message"),
    [
        (None, "10.11", "DatabaseBackup nightly does not exist"),
        (stored(phase="Running"), "10.11", "DatabaseBackup nightly is Running, not Completed"),
        (
            stored(phase="Failed", error="disk full"),
            "10.11",
            "DatabaseBackup nightly is Failed, not Completed (disk full)",
        ),
        (stored(engine="postgresql"), "10.11", "DatabaseBackup nightly is of postgresql, this is mariadb"),
        (
            stored(),
            "11.8",
            "DatabaseBackup nightly is of mariadb 10.11 (10.11.16-MariaDB), this is mariadb 11.8:"
            " restore into the same major version, then upgrade",
        ),
    ],
)
def test_refusals_name_the_problem(body: dict[str, Any] | None, version: str, message: str) -> None:
    spec = parsed(datastore={"type": "mariadb", "version": version}, restoreFrom={"backup": "nightly"}).spec
    (problem,) = check_backup("nightly", body, spec)
    assert problem.field == "spec.restoreFrom.backup"
    assert problem.message.startswith(message)


def test_a_logical_backup_seeds_an_instance_but_not_a_cluster() -> None:
    # An instance: the agent loads the dump once the engine runs (agent/backup/restore_gate.py).
    logical = stored(method="logical/mariadb-dump")
    spec = parsed(restoreFrom={"backup": "nightly"}).spec
    assert check_backup("nightly", logical, spec) == []
    cluster = parsed(CLUSTER, restoreFrom={"backup": "nightly"}, replicas=2).spec
    (problem,) = check_backup("nightly", logical, cluster)
    assert problem.message.startswith("DatabaseBackup nightly is a logical backup (logical/mariadb-dump)")
    assert "restore it into a DatabaseInstance, or use a physical backup" in problem.message
    assert check_backup("nightly", stored(), cluster) == []


async def test_reconcile_refuses_and_creates_no_child(kube: FakeKube, deps: Deps) -> None:
    seed(kube, body(restoreFrom={"backup": "nightly"}), stored(phase="Running"))
    before = set(kube.objects)
    with pytest.raises(InvalidSpec):
        await run.reconcile(parsed(restoreFrom={"backup": "nightly"}), None, deps, LOG)
    new = {k for k in kube.objects if k not in before}
    assert {kind for (_, kind, _, _) in new} <= {"DatabaseInstance", EVENT.kind}
    (event,) = [kube.objects[k] for k in new if k[1] == EVENT.kind]
    assert "DatabaseBackup nightly is Running, not Completed" in event["note"]


async def test_reconcile_writes_the_restore_request_for_the_init_container(
    kube: FakeKube, deps: Deps
) -> None:
    seed(
        kube,
        body(restoreFrom={"backup": "nightly"}),
        source(name="src"),
        credentials("src", root_password="source-root"),
        stored(),
    )
    await run.reconcile(parsed(restoreFrom={"backup": "nightly"}), None, deps, LOG)
    secret = kube.find(SECRET, NS, "db-restore")
    assert secret is not None
    request = json.loads(base64.b64decode(secret["data"]["request.json"]))
    assert request["backup_id"] == "uid-nightly"
    assert (request["engine"], request["major"]) == ("mariadb", "10.11")
    assert request["source"]["s3"]["bucket"] == "b" and request["source"]["s3"]["secret_access_key"] == "SK"
    sts = kube.find(STATEFULSET, NS, "db")
    assert sts is not None
    (init,) = sts["spec"]["template"]["spec"]["initContainers"]
    assert init["args"] == ["restore", "--request-file=/var/run/kubetrove/restore/request.json"]
    # The agent reads the same request: it loads a logical backup and gates /readyz until it is done.
    agent = sts["spec"]["template"]["spec"]["containers"][1]
    assert "--restore-request=/var/run/kubetrove/restore/request.json" in agent["args"]
    assert secret["metadata"]["ownerReferences"][0]["kind"] == INSTANCE.kind


async def test_the_new_instance_opens_the_data_with_the_source_credentials(
    kube: FakeKube, deps: Deps
) -> None:
    # The restored data keeps the source's root password: a generated one would open nothing.
    extra = {"user_note": "not an engine key"}
    seed(
        kube,
        body(restoreFrom={"backup": "nightly"}),
        source(name="src"),
        credentials("src", root_password="source-root", **extra),
        stored(),
    )
    await run.reconcile(parsed(restoreFrom={"backup": "nightly"}), None, deps, LOG)
    secret = kube.find(SECRET, NS, "db-credentials")
    assert secret is not None
    assert secret["data"] == {"root-password": b64("source-root")}
    assert secret["metadata"]["ownerReferences"][0]["name"] == "db"


async def test_an_existing_credentials_secret_is_kept(kube: FakeKube, deps: Deps) -> None:
    seed(
        kube,
        body(restoreFrom={"backup": "nightly"}),
        source(name="src"),
        credentials("src", root_password="source-root"),
        credentials("db", root_password="mine"),
        stored(),
    )
    await run.reconcile(parsed(restoreFrom={"backup": "nightly"}), None, deps, LOG)
    secret = kube.find(SECRET, NS, "db-credentials")
    assert secret is not None and secret["data"] == {"root-password": b64("mine")}


async def test_a_source_without_credentials_is_refused(kube: FakeKube, deps: Deps) -> None:
    seed(kube, body(restoreFrom={"backup": "nightly"}), source(name="src"), stored())
    with pytest.raises(
        InvalidSpec, match="keeps the admin password of its source, but Secret src-credentials"
    ):
        await run.reconcile(parsed(restoreFrom={"backup": "nightly"}), None, deps, LOG)
    assert kube.find(STATEFULSET, NS, "db") is None and kube.find(SECRET, NS, "db-credentials") is None


def test_a_cassandra_node_snapshot_seeds_an_instance_and_a_ring_backup_a_ring_of_its_size() -> None:
    snapshot = stored(engine="cassandra", engineVersion="5.0.9", method="physical/nodetool snapshot")
    datastore = {"type": "cassandra", "version": "5.0"}
    spec = parsed(restoreFrom={"backup": "nightly"}, datastore=datastore).spec
    assert check_backup("nightly", snapshot, spec) == []
    ring = parsed(CLUSTER, restoreFrom={"backup": "nightly"}, replicas=3, datastore=datastore).spec
    (problem,) = check_backup("nightly", snapshot, ring)
    assert problem.field == "spec.restoreFrom.backup"
    assert problem.message.startswith(
        "DatabaseBackup nightly is of one node, not of a ring and this ring has 3 (spec.replicas)"
    )
    nodes = [{"pod": f"src-{i}", "id": f"uid-{i}", "phase": "Completed"} for i in range(3)]
    ring_backup = stored(engine="cassandra", engineVersion="5.0.9", method="physical/nodetool snapshot")
    ring_backup["status"]["nodes"] = nodes
    assert check_backup("nightly", ring_backup, ring) == []
    two = parsed(CLUSTER, restoreFrom={"backup": "nightly"}, replicas=2, datastore=datastore).spec
    (problem,) = check_backup("nightly", ring_backup, two)
    assert "DatabaseBackup nightly holds 3 nodes and this ring has 2 (spec.replicas)" in problem.message
    (problem,) = check_backup("nightly", ring_backup, spec)
    assert "restore it into a DatabaseCluster with replicas: 3" in problem.message
    target = BackupTarget(directory=DirectoryTarget(path="/backups"))
    request = restore_request("uid", target, ring, [n["id"] for n in nodes])
    assert (request.backup_id, request.member_backups, request.first_member_only, request.major) == (
        "uid-0",
        ["uid-0", "uid-1", "uid-2"],
        False,
        "5.0",
    )
    # A 5.0.9 ring's backup restores into a ring pinned to 5.0.8 (one line: the agent's major is "5.0").
    pinned = parsed(
        CLUSTER, restoreFrom={"backup": "nightly"}, replicas=3, datastore={**datastore, "version": "5.0.8"}
    ).spec
    assert check_backup("nightly", ring_backup, pinned) == []
    assert restore_request("uid", target, pinned, [n["id"] for n in nodes]).major == "5.0"


@pytest.mark.parametrize(
    ("kind", "engine", "version", "first_only"),
    [
        (CLUSTER, "postgresql", "15", True),  # standbys clone from the restored member 0
        (CLUSTER, "mariadb", "10.11", False),  # every member restores: same data, same GTID position
        (INSTANCE, "postgresql", "15", False),
    ],
)
def test_which_members_restore(kind: Any, engine: str, version: str, first_only: bool) -> None:
    extra = {"replicas": 2} if kind is CLUSTER else {}
    spec = parsed(kind, datastore={"type": engine, "version": version}, **extra).spec
    target = BackupTarget(directory=DirectoryTarget(path="/backups"))
    assert restore_request("b", target, spec).first_member_only is first_only
