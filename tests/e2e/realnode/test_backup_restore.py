"""Backup and restore on real pods: a DatabaseBackup of a real engine streams into a real MinIO, and a NEW
DatabaseInstance with ``spec.restoreFrom`` comes up Ready holding exactly the source's rows.

Everything runs the way users run it: the engine and its agent in a pod on the real node, the restore in
the pod's init container (``kubetrove-agent restore``, agent image) before the engine starts, the rows
written and compared through each instance's read-write Service (ClusterIP, kube-proxy). MinIO runs on
the host on the CNI bridge's gateway address (10.85.0.1), the one host address pods reach.

Per engine (module-scoped, one source instance): the backup reaches Completed with size and sha256 and its
manifest is in the bucket; the restored instance is Ready and its rows equal the source's; a backup whose
object was corrupted is refused by the init container with a ``Restored`` condition saying so, and the
instance never becomes Ready (the engine never starts on a half-restored volume).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client

from kubetrove.agent.backup.manifest import MANIFEST_NAME
from kubetrove.api.resources import BACKUP
from kubetrove.render.names import ChildNames
from tests.integration.conftest_backup import corrupt_object, listed_keys
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, Operator, apply_cr, get_cr
from .conftest import (
    app_secret,
    connect_app,
    real_namespace_named,
    real_resource,
    s3_storage,
    settled,
)

DATABASE, ROWS, S3_SECRET = "shop", 300, "backup-s3"
ENGINES = {
    # engine: (version with a locally built image, port, binary column type)
    "mariadb": ("10.11", 3306, "VARBINARY(16)"),
    "postgresql": ("15", 5432, "BYTEA"),
}
READY = 360  # seconds: image start, first init, users (2 shared cores, other tests beside)


def _instance(namespace: str, engine: str, name: str, backup: str | None = None) -> dict[str, Any]:
    body = real_resource("DatabaseInstance", name, namespace, engine, ENGINES[engine][0], DATABASE)
    if backup is not None:
        body["spec"]["restoreFrom"] = {"backup": backup}
    return body


def _backup(namespace: str, name: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DatabaseBackup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"source": {"kind": "DatabaseInstance", "name": source}, "method": "physical"},
    }


def _status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, "DatabaseInstance", namespace, name) or {}).get("status")) or {}


def _pod_report(cluster: LocalCluster, namespace: str, name: str) -> str:
    """The instance's status, its pod's container states and the restore container's log (for failures)."""
    core, pod = client.CoreV1Api(cluster.api), ChildNames(name).pod(0)
    lines = [f"status of {name}: {_status(cluster, namespace, name)}"]
    try:
        st = core.read_namespaced_pod(pod, namespace).status
        for c in (st.init_container_statuses or []) + (st.container_statuses or []):
            lines.append(f"{c.name}: state={c.state} last={c.last_state}")
        lines.append(core.read_namespaced_pod_log(pod, namespace, container="restore", tail_lines=30))
    except client.ApiException as exc:
        lines.append(f"pod {pod}: {exc.reason}")
    return "\n".join(lines)


def _rw_host(cluster: LocalCluster, namespace: str, name: str) -> str:
    """Wait until the instance is Ready with its users applied; the ClusterIP of its rw Service."""
    try:
        wait_until(lambda: settled(_status(cluster, namespace, name)), f"{name} Ready with UsersReady", READY)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_pod_report(cluster, namespace, name)}") from None
    rw = ChildNames(name).rw_service
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(rw, namespace).spec.cluster_ip)


def _known_rows() -> list[tuple[Any, ...]]:
    """Predictable rows: unicode text, exact decimals, NULLs, binary."""
    return [
        (
            i,
            f"item-{i}-ünï",
            Decimal(f"{i}.{i % 100:02d}"),
            None if i % 7 else f"note {i}",
            bytes([i % 256] * 8),
        )
        for i in range(ROWS)
    ]


def _write_rows(engine: str, host: str) -> None:
    with connect_app(engine, host, DATABASE) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2),"
            f" note TEXT NULL, raw {ENGINES[engine][2]})"
        )
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s, %s)", _known_rows())


def _rows(engine: str, host: str) -> list[tuple[Any, ...]]:
    with connect_app(engine, host, DATABASE) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, name, price, note, raw FROM items ORDER BY id")
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cur.fetchall()]


def _backup_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP.plural, name
    )
    return obj.get("status") or {}


def _take_backup(cluster: LocalCluster, namespace: str, name: str, source: str) -> dict[str, Any]:
    """Create a DatabaseBackup of ``source`` and wait for Completed (fail at once on Failed)."""
    apply_cr(cluster, _backup(namespace, name, source))

    def completed() -> dict[str, Any] | None:
        status = _backup_status(cluster, namespace, name)
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Completed" else None

    return wait_until(completed, f"DatabaseBackup {name} Completed", timeout=300)  # type: ignore[no-any-return]


class Source:
    """One engine's source instance with known rows, its namespace and the bucket prefix."""

    def __init__(self, engine: str, namespace: str, host: str) -> None:
        self.engine, self.namespace, self.host, self.prefix = engine, namespace, host, f"{namespace}/"


@pytest.fixture(scope="module", params=sorted(ENGINES))
def source(
    request: pytest.FixtureRequest,
    local_cluster: LocalCluster,
    operator: Operator,
    real_node: str,
    bridge_minio: MinioServer,
) -> Iterator[Source]:
    """A namespace with the S3 Secret and a Ready source instance of the engine holding ROWS known rows."""
    engine = request.param
    with real_namespace_named(local_cluster.api, f"real-backup-{engine[:5]}-{uuid.uuid4().hex[:6]}") as ns:
        app_secret(local_cluster.api, ns)
        body = _instance(ns, engine, "src")
        body["spec"]["backup"] = {"storage": s3_storage(local_cluster.api, ns, bridge_minio, S3_SECRET)}
        apply_cr(local_cluster, body)
        host = _rw_host(local_cluster, ns, "src")
        _write_rows(engine, host)
        yield Source(engine, ns, host)


def test_backup_completes_with_size_and_checksum(
    local_cluster: LocalCluster, source: Source, bridge_minio: MinioServer
) -> None:
    status = _take_backup(local_cluster, source.namespace, "full", "src")
    assert status["sizeBytes"] > 0 and len(status["sha256"]) == 64, status
    assert status["method"].startswith("physical"), status
    keys = listed_keys(bridge_minio, source.prefix)
    assert any(k.endswith(f"/{MANIFEST_NAME}") for k in keys), keys


def test_restore_into_a_new_instance_has_exactly_the_rows(
    local_cluster: LocalCluster, source: Source
) -> None:
    _take_backup(local_cluster, source.namespace, "full", "src")  # idempotent: the first test's backup
    apply_cr(local_cluster, _instance(source.namespace, source.engine, "restored", backup="full"))
    host = _rw_host(local_cluster, source.namespace, "restored")
    restored = _rows(source.engine, host)
    assert len(restored) == ROWS
    assert restored == _rows(source.engine, source.host)
    assert restored == _known_rows()
    pod = client.CoreV1Api(local_cluster.api).read_namespaced_pod(
        ChildNames("restored").pod(0), source.namespace
    )
    (init,) = pod.status.init_container_statuses
    assert init.state.terminated is not None and init.state.terminated.exit_code == 0


def test_corrupt_backup_is_refused_and_never_serves(
    local_cluster: LocalCluster, source: Source, bridge_minio: MinioServer
) -> None:
    status = _take_backup(local_cluster, source.namespace, "damaged", "src")
    prefix = status["location"].split(f"{bridge_minio.bucket}/", 1)[1]
    data = [k for k in listed_keys(bridge_minio, prefix) if not k.endswith(MANIFEST_NAME)]
    assert data, f"no artifact under {prefix}"
    corrupt_object(bridge_minio, data[0])
    apply_cr(local_cluster, _instance(source.namespace, source.engine, "bad", backup="damaged"))

    def refused() -> dict[str, Any] | None:
        st = _status(local_cluster, source.namespace, "bad")
        assert st.get("phase") != "Ready", st
        found = [c for c in st.get("conditions", []) if c["type"] == "Restored" and c["status"] == "False"]
        return found[0] if found and found[0]["reason"] != "Restoring" else None

    condition = wait_until(
        refused, "a Restored=False condition with the init container's verdict", timeout=240
    )
    assert condition["reason"] == "RestoreRefused", condition
    assert (
        "is corrupt: artifact" in condition["message"]
        and "the target was not touched" in condition["message"]
    )
    pod = client.CoreV1Api(local_cluster.api).read_namespaced_pod(ChildNames("bad").pod(0), source.namespace)
    assert not any(c.state.running for c in pod.status.container_statuses or []), pod.status
