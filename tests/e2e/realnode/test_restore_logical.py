"""A LOGICAL backup (mariadb-dump / pg_dump) restored into a new DatabaseInstance on real pods.

The init container only checks the backup; the agent sidecar loads the dump once the engine accepts
writes and keeps the pod unready (out of the Services) until it is done (agent/backup/restore_gate.py).
The new instance reaches Ready with its users applied, and its rows, read through its read-write Service,
equal the source's exactly; its ``Restored`` condition comes from the agent's ``GET /v1/restore``.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubetrove.render.names import ChildNames

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, apply_cr
from .test_backup_restore import (  # the module-scoped source instance, one per engine, and its helpers
    Source,
    _backup_status,
    _instance,
    _known_rows,
    _rows,
    _rw_host,
    _status,
    source,  # noqa: F401 (a fixture)
)


def _take_logical_backup(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    """A DatabaseBackup of "src" with ``method: logical``, waited for until Completed."""
    apply_cr(
        cluster,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseBackup",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"source": {"kind": "DatabaseInstance", "name": "src"}, "method": "logical"},
        },
    )

    def completed() -> dict[str, Any] | None:
        status = _backup_status(cluster, namespace, name)
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Completed" else None

    return wait_until(completed, f"DatabaseBackup {name} Completed", timeout=300)  # type: ignore[no-any-return]


def test_logical_restore_into_a_new_instance_has_exactly_the_rows(
    local_cluster: LocalCluster,
    source: Source,  # noqa: F811 (the imported fixture)
) -> None:
    status = _take_logical_backup(local_cluster, source.namespace, "dump")
    assert status["method"].startswith("logical"), status
    apply_cr(local_cluster, _instance(source.namespace, source.engine, "loaded", backup="dump"))
    host = _rw_host(local_cluster, source.namespace, "loaded")
    restored = _rows(source.engine, host)
    assert restored == _known_rows()
    assert restored == _rows(source.engine, source.host)
    conditions = {c["type"]: c for c in _status(local_cluster, source.namespace, "loaded")["conditions"]}
    restored_condition = conditions["Restored"]
    assert (restored_condition["status"], restored_condition["reason"]) == ("True", "Restored")
    pod = client.CoreV1Api(local_cluster.api).read_namespaced_pod(
        ChildNames("loaded").pod(0), source.namespace
    )
    # The init container only checked the backup; the agent container loaded it (no restart on the way).
    (init,) = pod.status.init_container_statuses
    assert init.state.terminated is not None and init.state.terminated.exit_code == 0
    agent = next(c for c in pod.status.container_statuses if c.name == "agent")
    assert agent.ready and agent.restart_count == 0
