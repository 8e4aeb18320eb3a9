"""Restore verification on real pods: ``spec.backup.verify`` restores the newest backup into a throwaway
DatabaseInstance on the real node, checks it through that instance's agent, reports, and cleans up.

Per engine: a source instance with known rows and ``verify: true`` backs up to a real MinIO on the CNI
bridge's gateway; the operator then (by itself) restores the backup into ``<backup>-verify``, runs the
engine's consistency check and the row-count/checksum comparison, writes ``status.verification`` and a
``BackupVerified`` condition on the backup and on the source, posts an Event, and deletes the throwaway.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kubetrove.api.resources import BACKUP
from kubetrove.reconcile.backup.verify_plan import throwaway_name
from kubetrove.render.names import ChildNames
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, Operator, apply_cr, custom_object, get_cr
from .conftest import app_secret, connect_app, real_namespace_named, real_resource, s3_storage, settled

DATABASE, ROWS, S3_SECRET = "shop", 200, "verify-s3"
ENGINES = {"mariadb": ("10.11", 3306), "postgresql": ("15", 5432)}
READY = 360  # seconds: image start, first init, users (2 shared cores, other tests beside)
VERIFIED = 900  # the throwaway's restore, engine start and the check, after the backup


def _write_rows(engine: str, host: str) -> None:
    """ROWS rows in one table, through the app user on the rw Service (retried while it comes up)."""
    with connect_app(engine, host, DATABASE) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64))")
        cur.executemany("INSERT INTO items VALUES (%s, %s)", [(i, f"item-{i}-ünï") for i in range(ROWS)])


@pytest.fixture(params=sorted(ENGINES))
def verified_source(
    request: pytest.FixtureRequest,
    local_cluster: LocalCluster,
    operator: Operator,
    real_node: str,
    bridge_minio: MinioServer,
) -> Iterator[tuple[str, str]]:
    """(engine, namespace): a Ready source "src" with ROWS rows and ``backup.verify: true``."""
    engine = request.param
    with real_namespace_named(local_cluster.api, f"real-verify-{engine[:5]}-{uuid.uuid4().hex[:6]}") as ns:
        app_secret(local_cluster.api, ns)
        body = real_resource("DatabaseInstance", "src", ns, engine, ENGINES[engine][0], DATABASE)
        storage = s3_storage(local_cluster.api, ns, bridge_minio, S3_SECRET)
        # The largest target: recorded and reported, never what decides this test (no wall-clock bound).
        body["spec"]["backup"] = {"storage": storage, "verify": True, "verifyMaxRestoreSeconds": 86400}
        apply_cr(local_cluster, body)

        def ready() -> bool:
            return settled(
                (get_cr(local_cluster.api, "DatabaseInstance", ns, "src") or {}).get("status") or {}
            )

        wait_until(ready, "src Ready with UsersReady", READY)
        rw = client.CoreV1Api(local_cluster.api).read_namespaced_service(ChildNames("src").rw_service, ns)
        _write_rows(engine, str(rw.spec.cluster_ip))
        yield engine, ns


def test_newest_backup_is_restored_checked_and_reported(
    local_cluster: LocalCluster, verified_source: tuple[str, str]
) -> None:
    engine, ns = verified_source
    apply_cr(
        local_cluster,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseBackup",
            "metadata": {"name": "full", "namespace": ns},
            "spec": {"source": {"kind": "DatabaseInstance", "name": "src"}, "method": "physical"},
        },
    )
    throwaway = throwaway_name("full")
    seen: dict[str, Any] = {}

    def ended() -> dict[str, Any] | None:
        status = custom_object(local_cluster.api, BACKUP.plural, ns, "full").get("status") or {}
        assert status.get("phase") != "Failed", status
        verification = status.get("verification") or {}
        if custom_object(local_cluster.api, "databaseinstances", ns, throwaway):
            seen["throwaway"] = True
        return status if verification.get("phase") in ("Verified", "Failed") else None

    status = wait_until(ended, "the backup's verification to end", VERIFIED)
    verification = status["verification"]
    assert verification["phase"] == "Verified", verification
    took = datetime.datetime.fromisoformat(verification["completedAt"]) - datetime.datetime.fromisoformat(
        verification["startedAt"]
    )
    print(
        f"{engine}: verification (restore, start, check) took {took.total_seconds():.0f}s"
    )  # the note's figure
    assert verification["instance"] == throwaway and seen.get("throwaway"), verification
    # Timed recovery: the restore (start to the throwaway's Ready) is part of the whole verification.
    restore = verification["restoreSeconds"]
    assert 0 < restore <= took.total_seconds() and verification["maxRestoreSeconds"] == 86400, verification
    assert verification["backupAgeSeconds"] >= 0, verification
    print(f"{engine}: measured restore time {restore}s, backup age {verification['backupAgeSeconds']}s")
    assert verification["tables"] >= 1 and "match the backup's row counts" in verification["message"]
    tool = "CHECK TABLE" if engine == "mariadb" else "amcheck"
    assert f"{tool} OK" in verification["message"], verification

    def condition(obj: dict[str, Any]) -> dict[str, Any]:
        found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "BackupVerified"]
        return found[0] if found else {}

    assert condition({"status": status})["status"] == "True"
    source = wait_until(
        lambda: (o := get_cr(local_cluster.api, "DatabaseInstance", ns, "src")) and condition(o) and o,
        "the source's BackupVerified condition",
        60,
    )
    owned = condition(source)
    recovery = wait_until(
        lambda: ((get_cr(local_cluster.api, "DatabaseInstance", ns, "src") or {}).get("status") or {}).get(
            "recovery"
        ),
        "the source's status.recovery",
        60,
    )
    assert (recovery["backup"], recovery["verified"], recovery["restoreSeconds"]) == ("full", True, restore)
    assert (owned["status"], owned["reason"]) == ("True", "Verified") and "DatabaseBackup full" in owned[
        "message"
    ]
    wait_until(
        lambda: not custom_object(local_cluster.api, "databaseinstances", ns, throwaway),
        "the throwaway to go",
        180,
    )
    # The core/v1 view of events.k8s.io Events (the python client cannot parse kubelet Events in the other).
    notes = client.CoreV1Api(local_cluster.api).list_namespaced_event(ns).items
    assert any(e.reason == "BackupVerified" and e.involved_object.name == "src" for e in notes), [
        (e.reason, e.involved_object.name) for e in notes
    ]
