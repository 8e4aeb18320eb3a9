"""DatabaseBackup end to end: the real operator on the local cluster; REAL agent, MariaDB, MinIO on the host.

kwok runs the pods (no engine inside), so the operator reaches the member's agent through
KUBETROVE_AGENT_ENDPOINTS ({"<namespace>/db-0": "http://127.0.0.1:<port>"}): the agent serving there is
the real one, backing up a real MariaDB with mariabackup into a real MinIO. The agent token Secret is
created before the instance with the agent's token (reconcile never overwrites an existing Secret).

One test, in order (each step needs the previous one): a DatabaseBackup reaches Completed with its size
and sha256 and the manifest is in the bucket; the "* * * * *" schedule creates owned backups; keep=1 prunes
the older completed scheduled one (Retain: its data stays); deleting a Delete-policy backup removes its data.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubetrove.agent.backup.manifest import MANIFEST_NAME
from kubetrove.api.resources import BACKUP
from kubetrove.reconcile.backup.schedule import SCHEDULED_BY
from tests.integration.conftest import StartAgent, start_agent
from tests.integration.conftest_backup import listed_keys, minio
from tests.integration.servers.mariadb import MariaDBServer, start_mariadb
from tests.integration.servers.minio import MinioServer

from .conftest import LocalCluster, wait_until
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import GROUP, VERSION, Operator, apply_cr, wait_phase

__all__ = ["minio", "start_agent"]  # fixtures imported, not copied
ENDPOINTS_ENV = "KUBETROVE_AGENT_ENDPOINTS"


@pytest.fixture
def mariadb_server(tmp_path: Path) -> Iterator[MariaDBServer]:
    server = start_mariadb(tmp_path / "mariadb")
    yield server
    server.stop()


@pytest.fixture
def backup_operator(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[dict[str, str]], Operator]]:
    """Replace the session's operator by one pointed at host agents; the session's comes back afterwards."""
    started: list[Operator] = []

    def start(endpoints: dict[str, str]) -> Operator:
        operator.stop()
        monkeypatch.setenv(ENDPOINTS_ENV, json.dumps(endpoints))
        op = Operator(
            operator.kubeconfig, operator.log_path.with_name("operator-backup.log"), operator.lease_name
        )
        op.start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()
        print(f"\nbackup operator log: {op.log_path}")
    monkeypatch.delenv(ENDPOINTS_ENV, raising=False)
    operator.start()


def backups(api: client.ApiClient, namespace: str, labels: str = "") -> list[dict[str, Any]]:
    objects = client.CustomObjectsApi(api)
    items: list[dict[str, Any]] = objects.list_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP.plural, label_selector=labels
    )["items"]
    return items


def phase_of(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


async def until(check: Callable[[], Any], what: str, limit: float = 90) -> Any:
    """wait_until in a thread: the agent serves on this test's event loop meanwhile."""
    return await asyncio.to_thread(wait_until, check, what, limit)


def secret(name: str, data: dict[str, str]) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)


async def test_backup_lifecycle_schedule_and_retention(
    local_cluster: LocalCluster,
    namespace: str,
    backup_operator: Callable[[dict[str, str]], Operator],
    start_agent: StartAgent,
    minio: MinioServer,
    mariadb_server: MariaDBServer,
) -> None:
    api, ns = local_cluster.api, namespace
    mariadb_server.query("CREATE DATABASE shop")
    mariadb_server.query("CREATE TABLE shop.orders (id INT PRIMARY KEY, note TEXT)")
    mariadb_server.query("INSERT INTO shop.orders VALUES (1, 'first'), (2, 'second')")
    agent = await start_agent("mariadb", mariadb_server.engine_config())
    core = client.CoreV1Api(api)
    core.create_namespaced_secret(ns, secret("db-agent-token", {"token": agent.token}))
    core.create_namespaced_secret(
        ns, secret("s3", {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": minio.secret_key})
    )
    op = backup_operator({f"{ns}/db-0": agent.url})
    storage = {
        "s3": {
            "bucket": minio.bucket,
            "prefix": f"{ns}/",
            "endpoint": minio.endpoint,
            "credentialsSecretRef": "s3",
        }
    }
    instance = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DatabaseInstance",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "datastore": {"type": "mariadb", "version": "10.11"},
            "storage": {"size": "1Gi"},
            "backup": {"storage": storage, "schedule": "* * * * *", "keep": 1},
        },
    }
    apply_cr(local_cluster, instance)
    await asyncio.to_thread(wait_phase, api, instance, "Ready", 120, op)

    # 1. One DatabaseBackup, Completed with size, checksum and location; its manifest is in the bucket.
    manual = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DatabaseBackup",
        "metadata": {"name": "manual", "namespace": ns},
        "spec": {"source": {"kind": "DatabaseInstance", "name": "db"}, "deletionPolicy": "Delete"},
    }
    apply_cr(local_cluster, manual)

    def manual_done() -> dict[str, Any] | None:
        (obj,) = [b for b in backups(api, ns) if b["metadata"]["name"] == "manual"]
        assert phase_of(obj) != "Failed", obj["status"]
        return obj if phase_of(obj) == "Completed" else None

    obj = await until(manual_done, "DatabaseBackup manual Completed", 180)
    st, uid = obj["status"], obj["metadata"]["uid"]
    assert st["sizeBytes"] > 0 and len(st["sha256"]) == 64
    assert st["method"].startswith("physical/") and st["engine"] == "mariadb"
    assert st["startedAt"] and st["completedAt"] and st["position"]
    assert uid in st["location"]
    assert f"{ns}/{uid}/{MANIFEST_NAME}" in listed_keys(minio, f"{ns}/{uid}/")
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"

    # 2. The schedule creates backups owned by the instance, one per minute slot.
    def scheduled(done_only: bool = True) -> list[dict[str, Any]]:
        items = backups(api, ns, f"{SCHEDULED_BY}=db")
        return [b for b in items if not done_only or phase_of(b) == "Completed"]

    (first,) = await until(lambda: scheduled()[:1], "a scheduled backup Completed", 150)
    assert first["metadata"]["name"].startswith("db-20")
    assert [o["name"] for o in first["metadata"]["ownerReferences"]] == ["db"]
    first_uid = first["metadata"]["uid"]

    # 3. keep=1: when the next slot's backup completes, the older one goes; Retain keeps its data.
    def pruned() -> list[dict[str, Any]] | None:
        now = scheduled()
        names = [b["metadata"]["name"] for b in now]
        return now if first["metadata"]["name"] not in names and len(now) == 1 else None

    await until(pruned, "the older scheduled backup pruned (keep 1)", 150)
    assert listed_keys(minio, f"{ns}/{first_uid}/"), "Retain: a pruned backup's data stays"
    assert [b["metadata"]["name"] for b in backups(api, ns) if b["metadata"]["name"] == "manual"] == [
        "manual"
    ]

    # 4. deletionPolicy Delete: deleting the DatabaseBackup removes its stored objects.
    client.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, ns, BACKUP.plural, "manual")
    await until(lambda: not listed_keys(minio, f"{ns}/{uid}/"), "the Delete-policy backup's objects gone", 60)
    assert op.proc is not None and op.proc.poll() is None


def test_restore_from_refuses_a_missing_or_unfinished_backup_and_hands_a_completed_one_over(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    api, ns = local_cluster.api, namespace
    objects, apps, core = client.CustomObjectsApi(api), client.AppsV1Api(api), client.CoreV1Api(api)

    def instance(name: str, backup: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseInstance",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "datastore": {"type": "mariadb", "version": "10.11"},
                "storage": {"size": "1Gi"},
                "restoreFrom": {"backup": backup},
                "backup": {"storage": {"pvc": {"claimName": "backups"}}},
            },
        }

    missing = instance("from-missing", "nope")
    apply_cr(local_cluster, missing)
    obj = wait_phase(api, missing, "Failed", op=operator)
    (failed,) = [c for c in obj["status"]["conditions"] if c["type"] == "Failed"]
    assert failed["status"] == "True" and "DatabaseBackup nope does not exist" in failed["message"]
    assert not apps.list_namespaced_stateful_set(ns).items  # no child created

    # A Completed backup (its status written as the operator would) of the same engine and major.
    done = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DatabaseBackup",
        "metadata": {"name": "old", "namespace": ns},
        "spec": {"source": {"kind": "DatabaseInstance", "name": "gone"}},
    }
    apply_cr(local_cluster, done)
    wait_until(
        lambda: (
            phase_of(objects.get_namespaced_custom_object(GROUP, VERSION, ns, BACKUP.plural, "old"))
            == "Failed"
        ),
        "the backup of a missing source Failed",
    )
    fresh = instance("from-failed", "old")
    apply_cr(local_cluster, fresh)
    obj = wait_phase(api, fresh, "Failed", op=operator)
    assert "DatabaseBackup old is Failed, not Completed" in json.dumps(obj["status"]["conditions"])
    assert not apps.list_namespaced_stateful_set(ns).items
    assert not core.list_namespaced_secret(ns, label_selector="app.kubernetes.io/instance=from-failed").items

    # Final statuses are never rewritten: make "old" Completed, as a finished run would have left it.
    completed = {
        "phase": "Completed",
        "engine": "mariadb",
        "engineVersion": "10.11.16-MariaDB",
        "method": "physical/mariabackup",
        "error": None,
    }
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, BACKUP.plural, "old", {"status": completed}
    )
    # The restored data keeps its source's root password: the source's credentials Secret (here one a
    # Retain policy kept) is copied to the new instance.
    core.create_namespaced_secret(ns, secret("gone-credentials", {"root-password": "gone-root"}))
    good = instance("from-done", "old")
    apply_cr(local_cluster, good)
    sts = wait_until(
        lambda: apps.list_namespaced_stateful_set(ns).items, "the restored instance's StatefulSet"
    )
    copied = core.read_namespaced_secret("from-done-credentials", ns).data
    assert base64.b64decode(copied["root-password"]) == b"gone-root"
    (init,) = sts[0].spec.template.spec.init_containers
    assert init.args == ["restore", "--request-file=/var/run/kubetrove/restore/request.json"]
    request = json.loads(
        base64.b64decode(core.read_namespaced_secret("from-done-restore", ns).data["request.json"])
    )
    uid = objects.get_namespaced_custom_object(GROUP, VERSION, ns, BACKUP.plural, "old")["metadata"]["uid"]
    assert (request["backup_id"], request["engine"], request["major"]) == (uid, "mariadb", "10.11")
    assert request["source"] == {"s3": None, "directory": {"path": "/var/lib/kubetrove/backups/backups"}}
