"""Failover on real pods: a 3-member MariaDB DatabaseCluster under write load loses its primary (the pod
deleted, or the engine process SIGKILLed on the node); writes resume through the read-write Service
(on a promoted replica, or on the old primary back) and every write the client saw acknowledged is there.

The writer is a real client on the host, writing through the rw Service's ClusterIP (kube-proxy), so
the test also proves the Service follows the new primary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from kubernetes import client

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import Operator, apply_cr, get_cr
from .conftest import APP_PASSWORD, APP_USER, app_secret, real_namespace_named, real_resource, settled

NAME, USER, PASSWORD, DATABASE = "ha", APP_USER, APP_PASSWORD, "orders"


def _cluster_body(namespace: str) -> dict[str, Any]:
    body = real_resource("DatabaseCluster", NAME, namespace, "mariadb", "10.11", DATABASE)
    body["spec"]["replicas"] = 3
    return body


def _status(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, "DatabaseCluster", namespace, NAME) or {}).get("status")) or {}


def _with_primary(status: dict[str, Any]) -> bool:
    return settled(status) and bool(status.get("primary"))


def _connect(host: str, **timeouts: int) -> Any:
    """The app user's autocommit connection through the rw Service."""
    return pymysql.connect(host=host, user=USER, password=PASSWORD, database=DATABASE, connect_timeout=3,
                           autocommit=True, **timeouts)  # fmt: skip


class Writer(threading.Thread):
    """Inserts numbered rows through the rw Service; records the ids whose COMMIT was acknowledged."""

    def __init__(self, host: str) -> None:
        super().__init__(daemon=True)
        self.host, self.stop, self.acked, self.errors = host, threading.Event(), [], 0
        self._next = 0

    def _connect(self) -> Any:
        return _connect(self.host, read_timeout=5, write_timeout=5)

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or self._connect()
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked (id) VALUES (%s)", (self._next,))
                self.acked.append(self._next)  # only after the server acknowledged the autocommit
                self._next += 1
                time.sleep(0.05)
            except pymysql.err.MySQLError:
                self.errors += 1
                self._next += 1  # an unacknowledged id is never retried: it may or may not exist
                conn = None
                time.sleep(0.5)


@pytest.fixture
def ha_cluster(local_cluster: LocalCluster, operator: Operator, real_node: str) -> Iterator[tuple[str, str]]:
    """(namespace, rw ClusterIP) of a settled 3-member MariaDB cluster with the table `acked`."""
    with real_namespace_named(local_cluster.api, f"real-failover-{uuid.uuid4().hex[:6]}") as ns:
        core = client.CoreV1Api(local_cluster.api)
        app_secret(local_cluster.api, ns)
        apply_cr(local_cluster, _cluster_body(ns))
        wait_until(
            lambda: _with_primary(_status(local_cluster, ns)), "the cluster Ready with a primary", timeout=300
        )
        host = core.read_namespaced_service(f"{NAME}-rw", ns).spec.cluster_ip

        def create_table() -> bool:
            try:
                with _connect(host) as conn, conn.cursor() as cur:
                    cur.execute("CREATE TABLE IF NOT EXISTS acked (id INT PRIMARY KEY)")
                return True
            except pymysql.err.OperationalError:  # the Service not routing yet
                return False

        wait_until(create_table, "the table through the rw Service", timeout=60)
        yield ns, host


def _engine_host_pid(cluster: LocalCluster, namespace: str, pod: str) -> int:
    """The host PID of the pod's engine container (containerd's task), so the test can SIGKILL it."""
    status = client.CoreV1Api(cluster.api).read_namespaced_pod(pod, namespace).status
    cid = next(c.container_id for c in status.container_statuses if c.name == "engine").split("//")[1]
    import realnode

    sock = realnode.layout_for(cluster.layout).containerd_socket
    out = subprocess.run(["ctr", "--address", str(sock), "-n", "k8s.io", "tasks", "ls"],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return int(next(line.split()[1] for line in out.splitlines() if line.startswith(cid)))


@pytest.mark.parametrize("how", ["delete-pod", "kill-engine"])
def test_failover_keeps_every_acknowledged_write(
    local_cluster: LocalCluster, ha_cluster: tuple[str, str], how: str
) -> None:
    """The primary fails; writes resume through the rw Service and none acknowledged is lost."""
    ns, host = ha_cluster
    old = _status(local_cluster, ns)["primary"]
    writer = Writer(host)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 20, "20 acknowledged writes before the failure")
    if how == "delete-pod":
        client.CoreV1Api(local_cluster.api).delete_namespaced_pod(old, ns)
    else:
        os.kill(_engine_host_pid(local_cluster, ns, old), signal.SIGKILL)

    # Either a replica is promoted or the old primary comes back (a recreated pod, a restarted engine);
    # what a client must see is the rw Service taking writes again, on a settled cluster.
    before = len(writer.acked)
    try:
        wait_until(
            lambda: len(writer.acked) >= before + 20, "20 writes through rw after the failure", timeout=240
        )
    except AssertionError as exc:
        rw = client.DiscoveryV1Api(local_cluster.api).list_namespaced_endpoint_slice(
            ns, label_selector=f"kubernetes.io/service-name={NAME}-rw"
        )
        addresses = [a for s in rw.items for e in (s.endpoints or []) for a in e.addresses]
        raise AssertionError(f"{exc}\nstatus after {how} of {old}: {_status(local_cluster, ns)}\n"
                             f"rw Service endpoints: {addresses}") from None  # fmt: skip
    wait_until(lambda: _with_primary(_status(local_cluster, ns)), "the cluster settled again")
    writer.stop.set()
    writer.join(timeout=30)

    with _connect(host) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM acked")
        present = {row[0] for row in cur.fetchall()}
    lost = sorted(set(writer.acked) - present)
    assert not lost, f"acknowledged writes missing after failover from {old}: {lost[:20]} (of {len(lost)})"
