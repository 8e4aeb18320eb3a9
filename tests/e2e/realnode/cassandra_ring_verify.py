"""The ring's ``spec.backup.verify`` on real pods: one step for test_cassandra_pods.py, after its backup step.

``verify_ring_backup(cluster, ring)`` turns ``spec.backup.verify`` on for the module's ring. The operator
then, by itself, verifies the ring's newest Completed DatabaseBackup (the backup step's, whose node backups
are ``ring.facts["backup"]``): it creates the throwaway DatabaseCluster ``<backup>-verify`` of as many
nodes, whose member i restores node i's snapshot with node i's tokens; once it is Ready, asks every
member's agent ``POST /v1/verify`` about the node backup it restored (the ring-wide row counts recorded at
backup time against the restored ring's, and ``nodetool verify --force`` over that node's SSTables);
writes ``status.verification`` and the ``BackupVerified`` condition on the backup and the ring, the
owner's ``status.recovery``, an Event; and deletes the throwaway ring. The step checks each of these, then
turns ``verify`` off again (a later backup of the module would otherwise start another verification).

Costs three more Cassandra JVMs while it runs (the throwaway ring beside the source ring): call it when
no other restored ring (the restore step's ``copy``) is running, on 2 shared cores.

Ran once on pods (2026-12-07) from a temporary module with its own ring (the module's 200 rows at RF 3,
then a ring backup): Verified on each of the 3 nodes 45 s after ``verify`` was turned on (restore 38 s),
the throwaway ring and its pods gone 20 s later; passed.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from kubernetes import client

from kubetrove.api.resources import BACKUP
from kubetrove.reconcile.backup.verify_plan import throwaway_name

from ..conftest import LocalCluster, wait_until
from ..operator_support import GROUP, VERSION, custom_object, get_cr
from .cassandra_pods import pods_of, report
from .cassandra_ring_steps import NAME, NODES, Ring, patch_spec

VERIFIED = 1200  # seconds: three JVMs restored and started one after the other, then three checks


def _the_backup(cluster: LocalCluster, ring: Ring) -> str:
    """The DatabaseBackup whose node backups the backup step recorded."""
    listed = client.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        GROUP, VERSION, ring.namespace, BACKUP.plural
    )["items"]
    ids = ring.facts["backup"]
    (name,) = [
        b["metadata"]["name"]
        for b in listed
        if [n["id"] for n in (b.get("status") or {}).get("nodes") or []] == ids
    ]
    return str(name)


def _report(cluster: LocalCluster, ns: str, name: str) -> str:
    """The throwaway ring's report, or why there is none (it may be gone already)."""
    try:
        return report(cluster, ns, name)
    except client.ApiException as exc:
        return f"no report of {name}: {exc.status} {exc.reason}"


def _condition(obj: dict[str, Any]) -> dict[str, Any]:
    found = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "BackupVerified"]
    return found[0] if found else {}


def verify_ring_backup(cluster: LocalCluster, ring: Ring) -> None:
    """``spec.backup.verify`` on: the ring's backup verified in a throwaway ring of NODES, then deleted."""
    ns = ring.namespace
    backup = _the_backup(cluster, ring)
    throwaway = throwaway_name(backup)
    seen: dict[str, Any] = {}
    started = time.monotonic()
    patch_spec(cluster, ring, {"backup": {"verify": True}})
    try:

        def ended() -> dict[str, Any] | None:
            status = custom_object(cluster.api, BACKUP.plural, ns, backup).get("status") or {}
            ring_copy = custom_object(cluster.api, "databaseclusters", ns, throwaway)
            if ring_copy:
                seen["replicas"] = ring_copy["spec"].get("replicas")
                seen["restoreFrom"] = ring_copy["spec"].get("restoreFrom")
                seen["pods"] = max(seen.get("pods", 0), len(pods_of(cluster, ns, throwaway)))
            verification = status.get("verification") or {}
            return status if verification.get("phase") in ("Verified", "Failed") else None

        try:
            status = wait_until(ended, f"the verification of DatabaseBackup {backup} to end", VERIFIED)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; seen {seen}\n{_report(cluster, ns, throwaway)}") from None
        verification = status["verification"]
        took = datetime.datetime.fromisoformat(verification["completedAt"]) - datetime.datetime.fromisoformat(
            verification["startedAt"]
        )
        print(
            f"cassandra: spec.backup.verify of the ring's backup {verification['phase']} in"
            f" {time.monotonic() - started:.0f}s after the spec change (restore, start, check"
            f" {took.total_seconds():.0f}s; restore {verification.get('restoreSeconds')}s): {verification}"
        )
        assert verification["phase"] == "Verified", verification
        # The throwaway was a ring of as many nodes restored from the backup, not a DatabaseInstance.
        assert verification["instance"] == throwaway, verification
        assert seen.get("replicas") == NODES and seen.get("restoreFrom") == {"backup": backup}, seen
        assert seen.get("pods") == NODES, seen
        assert not custom_object(cluster.api, "databaseinstances", ns, throwaway)
        message = verification["message"]
        pods = ", ".join(f"{throwaway}-{i}" for i in range(NODES))
        assert "match the backup's row counts" in message and "nodetool verify OK" in message, message
        assert message.endswith(f"on each of the {NODES} nodes ({pods})"), message
        assert verification["tables"] >= 1, verification
        restore = verification["restoreSeconds"]
        assert 0 < restore <= took.total_seconds() and verification["backupAgeSeconds"] >= 0, verification
        assert _condition({"status": status})["status"] == "True", status

        owner = wait_until(
            lambda: (o := get_cr(cluster.api, "DatabaseCluster", ns, NAME)) and _condition(o) and o,
            "the ring's BackupVerified condition",
            60,
        )
        mine = _condition(owner)
        assert (mine["status"], mine["reason"]) == ("True", "Verified"), mine
        assert mine["message"].startswith(f"DatabaseBackup {backup}:"), mine
        recovery = wait_until(
            lambda: ((get_cr(cluster.api, "DatabaseCluster", ns, NAME) or {}).get("status") or {}).get(
                "recovery"
            ),
            "the ring's status.recovery",
            60,
        )
        assert (recovery["backup"], recovery["verified"], recovery["restoreSeconds"]) == (
            backup,
            True,
            restore,
        )

        gone = time.monotonic()
        wait_until(
            lambda: (
                not custom_object(cluster.api, "databaseclusters", ns, throwaway)
                and not pods_of(cluster, ns, throwaway)
            ),
            "the throwaway ring and its pods to go",
            300,
        )
        print(
            f"cassandra: the throwaway ring {throwaway} and its pods gone in {time.monotonic() - gone:.0f}s"
        )
        notes = client.CoreV1Api(cluster.api).list_namespaced_event(ns).items
        reasons = {(e.reason, e.involved_object.name) for e in notes}
        assert {("BackupVerified", NAME), ("BackupVerified", backup)} <= reasons, reasons
    finally:
        patch_spec(cluster, ring, {"backup": {"verify": False}})
