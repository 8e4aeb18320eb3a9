"""A PostgreSQL DatabaseCluster on real pods: streaming standbys, failover, and the old primary's rejoin.

Three members on the real node (containerd + runc, PostgreSQL 15 from Debian). The standbys clone
themselves from the primary before postgres starts (the engine container's start script); the loop
promotes with pg_promote() and repoints with a reload; a deleted primary comes back (or, when its pod
returned within the 1 s detection threshold, it simply stays primary) and streams again after its own
start script rewound it; then a declarative switchover (spec.primary) makes the old primary restart
live as a standby. A host client writes through the rw Service's ClusterIP all along and records every
acknowledged commit; none may be missing at the end. The cluster runs with ``tls.mode: required``
(test_client_tls.py): pg_basebackup, streaming and pg_rewind all go over TLS, and the host clients too.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from kubernetes import client

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import Operator, apply_cr, get_cr
from .conftest import APP_PASSWORD, APP_USER, app_secret, real_namespace_named, real_resource, settled

NAME, DATABASE = "pg", "orders"


def _status(cluster: LocalCluster, namespace: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, "DatabaseCluster", namespace, NAME) or {}).get("status")) or {}


def _with_primary(status: dict[str, Any]) -> bool:
    return settled(status) and bool(status.get("primary"))


def _connect(host: str, user: str = APP_USER, password: str = APP_PASSWORD, db: str = DATABASE) -> Any:
    return psycopg.connect(
        host=host, user=user, password=password, dbname=db, autocommit=True, connect_timeout=3
    )


class Writer(threading.Thread):
    """Inserts numbered rows through the rw Service; records the ids whose COMMIT was acknowledged."""

    def __init__(self, host: str) -> None:
        super().__init__(daemon=True)
        self.host, self.stop, self.errors = host, threading.Event(), 0
        self.acked: list[int] = []
        self._next = 0

    def run(self) -> None:
        conn = None
        while not self.stop.is_set():
            try:
                conn = conn or _connect(self.host)
                # A commit blocked on a lost synchronous standby must not hang the test forever.
                conn.execute("SET statement_timeout = '20s'")
                conn.execute("INSERT INTO acked (id) VALUES (%s)", (self._next,))
                self.acked.append(self._next)  # only after the server acknowledged the autocommit
                self._next += 1
                time.sleep(0.05)
            except psycopg.Error:
                self.errors += 1
                self._next += 1  # an unacknowledged id is never retried: it may or may not exist
                conn = None
                time.sleep(0.5)


@pytest.fixture
def pg_cluster(
    local_cluster: LocalCluster, operator: Operator, real_node: str
) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(the resource, rw ClusterIP, ro ClusterIP) of a settled 3-member cluster with the table ``acked``."""
    with real_namespace_named(local_cluster.api, f"real-pg-{uuid.uuid4().hex[:6]}") as ns:
        core = client.CoreV1Api(local_cluster.api)
        app_secret(local_cluster.api, ns)
        body = real_resource("DatabaseCluster", NAME, ns, "postgresql", "15", DATABASE)
        body["spec"]["replicas"] = 3
        body["spec"]["failover"] = {"detectionSeconds": 1}  # a deleted primary's pod is back in seconds
        body["spec"]["tls"] = {"mode": "required"}  # clone, streaming and rewind must work over TLS
        apply_cr(local_cluster, body)
        wait_until(
            lambda: _with_primary(_status(local_cluster, ns)), "the cluster Ready with a primary", timeout=400
        )
        rw = core.read_namespaced_service(f"{NAME}-rw", ns).spec.cluster_ip
        ro = core.read_namespaced_service(f"{NAME}-ro", ns).spec.cluster_ip

        def create_table() -> bool:
            try:
                with _connect(rw) as conn:
                    conn.execute("CREATE TABLE IF NOT EXISTS acked (id INT PRIMARY KEY)")
                return True
            except psycopg.OperationalError:  # the Service not routing yet
                return False

        wait_until(create_table, "the table through the rw Service", timeout=60)
        yield body, rw, ro


def _superuser_password(cluster: LocalCluster, namespace: str) -> str:
    secret = client.CoreV1Api(cluster.api).read_namespaced_secret(f"{NAME}-credentials", namespace)
    return base64.b64decode(secret.data["superuser-password"]).decode()


def _streaming(host: str, password: str) -> list[str]:
    """Client addresses of the standbys streaming from the server behind ``host`` (as the superuser),
    each over TLS (the cluster's tls.mode is required: a plaintext one would have been refused)."""
    try:
        with _connect(host, "postgres", password, "postgres") as conn:
            rows = conn.execute(
                "SELECT r.client_addr::text, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
                " WHERE r.state = 'streaming'"
            ).fetchall()
    except psycopg.OperationalError:
        return []
    assert all(ssl for _, ssl in rows), rows
    return [addr for addr, _ in rows]


def _member_report(cluster: LocalCluster, namespace: str, pod: str) -> str:
    """The cluster's status and the last lines of ``pod``'s engine and agent logs (for a failure)."""
    core, lines = client.CoreV1Api(cluster.api), [f"status: {_status(cluster, namespace)}"]
    for container in ("engine", "agent"):
        try:
            log = core.read_namespaced_pod_log(pod, namespace, container=container, tail_lines=40)
        except client.ApiException as exc:
            log = f"(no log: {exc.reason})"
        lines.append(f"--- {pod}/{container}\n{log}")
    return "\n".join(lines)


def test_standbys_stream_and_failover_and_switchover_keep_every_acknowledged_write(
    local_cluster: LocalCluster, pg_cluster: tuple[dict[str, Any], str, str]
) -> None:
    body, rw, ro = pg_cluster
    ns = body["metadata"]["namespace"]
    password = _superuser_password(local_cluster, ns)
    wait_until(
        lambda: len(_streaming(rw, password)) == 2, "two standbys streaming from the primary", timeout=120
    )

    # A row written on the primary is read on a standby (the ro Service selects the replicas).
    with _connect(rw) as conn:
        conn.execute("INSERT INTO acked (id) VALUES (-1)")

    def on_standby() -> bool:
        try:
            with _connect(ro) as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                return bool(conn.execute("SELECT count(*) FROM acked WHERE id = -1").fetchone() == (1,))
        except psycopg.OperationalError:
            return False

    wait_until(on_standby, "the row on a standby", timeout=60)

    old = _status(local_cluster, ns)["primary"]
    writer = Writer(rw)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 20, "20 acknowledged writes before the failure")
    client.CoreV1Api(local_cluster.api).delete_namespaced_pod(old, ns)
    before = len(writer.acked)
    try:
        wait_until(
            lambda: len(writer.acked) >= before + 20, "20 writes through rw after the failure", timeout=240
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus after deleting {old}: {_status(local_cluster, ns)}") from None
    new = _status(local_cluster, ns)["primary"]

    # The deleted primary's pod comes back; when a standby took over, it is rewound and streams again.
    try:
        wait_until(
            lambda: len(_streaming(rw, password)) == 2, f"{old} back: two standbys streaming", timeout=300
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_member_report(local_cluster, ns, old)}") from None
    wait_until(lambda: _with_primary(_status(local_cluster, ns)), "the cluster settled again")

    # Switchover to a standby: the primary restarts live as a standby (its start script rewinds it).
    target = next(f"{NAME}-{i}" for i in range(3) if f"{NAME}-{i}" != new)
    body["spec"]["primary"] = target
    apply_cr(local_cluster, body)
    before = len(writer.acked)
    wait_until(
        lambda: _status(local_cluster, ns).get("primary") == target, f"switchover to {target}", timeout=120
    )
    wait_until(
        lambda: len(writer.acked) >= before + 20, "20 writes through rw after the switchover", timeout=120
    )
    wait_until(lambda: len(_streaming(rw, password)) == 2, f"{new} rejoined {target} live", timeout=300)
    writer.stop.set()
    writer.join(timeout=30)

    with _connect(rw) as conn:
        present = {row[0] for row in conn.execute("SELECT id FROM acked").fetchall()}
    lost = sorted(set(writer.acked) - present)
    assert not lost, f"acknowledged writes missing ({old} -> {new} -> {target}): {lost[:20]} (of {len(lost)})"
    print(f"failover {old} -> {new}, switchover -> {target}: {len(writer.acked)} acknowledged, "
          f"{writer.errors} client errors")  # fmt: skip
