"""Restore into a DatabaseCluster on real pods. MariaDB: every member's init container restores the same
physical backup (same data, same GTID position), then the clustering loop elects a primary and points the
other member at it. PostgreSQL: member 0 restores and the others clone from it with pg_basebackup
(``Datastore.restore_first_member_only``): two members each ending recovery on their own would write
diverging WAL on the same timeline, which this test caught before that rule existed.

What this proves, per engine (MariaDB, PostgreSQL), on a 2-member cluster seeded from a backup of a
DatabaseInstance: the cluster reaches Ready with a primary and the ``Restored`` condition; the rows read
through the read-write Service are exactly the source's; a row written after the restore reaches the
replica through replication (read on the replica's own pod, by its address on the CNI bridge), so the
restored members really form one replicating cluster and not two copies that happen to agree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from kubetrove.render.names import ChildNames
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import Operator, apply_cr, get_cr
from .conftest import app_secret, connect_app, real_namespace_named, real_resource, s3_storage, settled
from .test_backup_restore import DATABASE, ENGINES, READY, ROWS, S3_SECRET, _rows, _take_backup, _write_rows


def _status(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, kind, namespace, name) or {}).get("status")) or {}


def _service_ip(cluster: LocalCluster, namespace: str, service: str) -> str:
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(service, namespace).spec.cluster_ip)


def _pod_ip(cluster: LocalCluster, namespace: str, pod: str) -> str:
    return str(client.CoreV1Api(cluster.api).read_namespaced_pod(pod, namespace).status.pod_ip)


def _report(cluster: LocalCluster, namespace: str) -> str:
    """The cluster's status, and per member its container states and the last lines of each log."""
    core, lines = client.CoreV1Api(cluster.api), [str(_status(cluster, "DatabaseCluster", namespace, "rc"))]
    for pod in core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/instance=rc").items:
        st = pod.status
        for c in (st.init_container_statuses or []) + (st.container_statuses or []):
            lines.append(f"{pod.metadata.name}/{c.name}: state={c.state} restarts={c.restart_count}")
            try:
                log = core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container=c.name, tail_lines=25
                )
            except client.ApiException as exc:
                log = f"(no log: {exc.reason})"
            lines.append(log)
    return "\n".join(lines)


@pytest.fixture(scope="module", params=sorted(ENGINES))
def restored_cluster(
    request: pytest.FixtureRequest,
    local_cluster: LocalCluster,
    operator: Operator,
    real_node: str,
    bridge_minio: MinioServer,
) -> Iterator[tuple[str, str, str]]:
    """(engine, namespace, source rw host): a source instance with known rows, backed up, and a 2-member
    DatabaseCluster ``rc`` created from that backup, Ready with a primary."""
    engine = request.param
    version = ENGINES[engine][0]
    namespace = f"real-restore-dbc-{engine[:5]}-{uuid.uuid4().hex[:6]}"
    with real_namespace_named(local_cluster.api, namespace) as ns:
        app_secret(local_cluster.api, ns)
        storage = s3_storage(local_cluster.api, ns, bridge_minio, S3_SECRET)
        src = real_resource("DatabaseInstance", "src", ns, engine, version, DATABASE)
        src["spec"]["backup"] = {"storage": storage}
        apply_cr(local_cluster, src)
        wait_until(lambda: settled(_status(local_cluster, "DatabaseInstance", ns, "src")), "src Ready", READY)
        src_host = _service_ip(local_cluster, ns, ChildNames("src").rw_service)
        _write_rows(engine, src_host)
        _take_backup(local_cluster, ns, "full", "src")

        body = real_resource("DatabaseCluster", "rc", ns, engine, version, DATABASE)
        body["spec"].update(replicas=2, restoreFrom={"backup": "full"}, backup={"storage": storage})
        apply_cr(local_cluster, body)

        def ready() -> bool:
            status = _status(local_cluster, "DatabaseCluster", ns, "rc")
            return settled(status) and bool(status.get("primary"))

        try:
            wait_until(ready, "rc Ready with a primary", READY)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
        yield engine, ns, src_host


def test_every_member_restored_and_the_cluster_serves_the_rows(
    local_cluster: LocalCluster, restored_cluster: tuple[str, str, str]
) -> None:
    engine, ns, src_host = restored_cluster
    status = _status(local_cluster, "DatabaseCluster", ns, "rc")
    restored = {c["type"]: c for c in status["conditions"]}["Restored"]
    assert restored["status"] == "True", restored
    rw = _service_ip(local_cluster, ns, ChildNames("rc").rw_service)
    rows = _rows(engine, rw)
    assert len(rows) == ROWS and rows == _rows(engine, src_host)


def test_a_write_after_the_restore_reaches_the_replica(
    local_cluster: LocalCluster, restored_cluster: tuple[str, str, str]
) -> None:
    engine, ns, _ = restored_cluster
    status = _status(local_cluster, "DatabaseCluster", ns, "rc")
    primary = status["primary"]
    (replica,) = [ChildNames("rc").pod(i) for i in range(2) if ChildNames("rc").pod(i) != primary]
    rw = _service_ip(local_cluster, ns, ChildNames("rc").rw_service)
    with connect_app(engine, rw, DATABASE) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO items (id, name) VALUES (%s, %s)", (ROWS + 1, "after-restore"))
        conn.commit()
    replica_ip = _pod_ip(local_cluster, ns, replica)

    def replicated() -> bool:
        with connect_app(engine, replica_ip, DATABASE) as conn, conn.cursor() as cur:
            cur.execute("SELECT name FROM items WHERE id = %s", (ROWS + 1,))
            return cur.fetchone() == ("after-restore",)

    wait_until(replicated, f"the new row on replica {replica}", 120)
