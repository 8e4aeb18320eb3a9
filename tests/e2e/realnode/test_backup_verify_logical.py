"""Restore verification of a LOGICAL backup on real pods: the throwaway DatabaseInstance's agent loads the
dump once its engine runs (agent/backup/restore_gate.py), then the usual check and comparison verify it.
"""

from __future__ import annotations

from typing import Any

from kubetrove.api.resources import BACKUP

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, apply_cr, custom_object, get_cr
from .test_backup_verify import VERIFIED, verified_source  # noqa: F401 (a fixture)


def test_logical_backup_is_verified(
    local_cluster: LocalCluster,
    verified_source: tuple[str, str],  # noqa: F811 (the imported fixture)
) -> None:
    _engine, ns = verified_source
    apply_cr(
        local_cluster,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseBackup",
            "metadata": {"name": "dump", "namespace": ns},
            "spec": {"source": {"kind": "DatabaseInstance", "name": "src"}, "method": "logical"},
        },
    )

    def ended() -> dict[str, Any] | None:
        status = custom_object(local_cluster.api, BACKUP.plural, ns, "dump").get("status") or {}
        assert status.get("phase") != "Failed", status
        verification = status.get("verification") or {}
        return status if verification.get("phase") in ("Verified", "Failed") else None

    status = wait_until(ended, "the logical backup's verification to end", VERIFIED)
    assert status["method"].startswith("logical"), status
    verification = status["verification"]
    assert verification["phase"] == "Verified", verification
    assert verification["tables"] >= 1 and "match the backup's row counts" in verification["message"]
    (condition,) = [c for c in status["conditions"] if c["type"] == "BackupVerified"]
    assert condition["status"] == "True", condition

    def owner_condition() -> dict[str, Any] | None:
        source = get_cr(local_cluster.api, "DatabaseInstance", ns, "src") or {}
        found = [
            c for c in (source.get("status") or {}).get("conditions", []) if c["type"] == "BackupVerified"
        ]
        return found[0] if found and "DatabaseBackup dump" in found[0]["message"] else None

    owned = wait_until(owner_condition, "the source's BackupVerified condition for dump", 60)
    assert owned["status"] == "True", owned
