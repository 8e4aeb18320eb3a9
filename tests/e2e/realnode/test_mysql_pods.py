"""MySQL 9.7 on real pods: a 3-member DatabaseCluster of the images hack/images builds from Debian sid
(``mysql:9.7.4`` and its agent ``agent-mysql:0.1.0``, with 9.7's own mysqldump), on the real node.

One cluster for the whole module (MySQL's first start is the slow part on 2 shared cores), checked in
order:

1. Ready with a primary; both replicas replicate with GTID auto-positioning, are ``super_read_only``,
   and the primary's commits are acknowledged by semi-sync (``Rpl_semi_sync_source_yes_tx`` grows).
2. Users and grants as the spec says, through the read-write Service: the ``readWrite`` user writes,
   the ``read`` user reads and is refused a write by the server.
3. A logical backup of the cluster (mysqldump --single-transaction, GTIDs included) to a real MinIO,
   verified by the operator (restored into a throwaway instance, CHECK TABLE, row counts), then restored
   into a new DatabaseInstance whose rows equal the cluster's.
4. The primary's pod deleted under writes through the rw Service: writes resume, no acknowledged write is
   missing; then a switchover (``spec.primary``), again without losing one.
5. A physical backup by the clone plugin, verified, then restored into a new DatabaseInstance: the same
   rows, its own ``server_uuid``.

The host's client connects to Services' ClusterIPs and to pod IPs (kube-proxy and the CNI bridge).
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest
from kubernetes import client

from kubetrove.api.resources import BACKUP
from kubetrove.render.names import ChildNames
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, Operator, apply_cr, get_cr
from .conftest import (
    APP_PASSWORD,
    APP_SECRET,
    APP_USER,
    app_secret,
    real_namespace_named,
    real_resource,
    s3_storage,
    settled,
)

NAME, DATABASE, VERSION_97 = "my", "orders", "9.7"
READER, READER_KEY, READER_PASSWORD = "reader", "reader-password", "reader-Secret-7"
S3_SECRET = "backup-s3"
READY = 600  # seconds: three MySQL first starts (initialize, then the server) on 2 shared cores
ROWS = 200


@dataclass
class MySQLCluster:
    namespace: str
    body: dict[str, Any]
    rw: str  # the rw Service's ClusterIP
    root_password: str


def _status(
    cluster: LocalCluster, namespace: str, kind: str = "DatabaseCluster", name: str = NAME
) -> dict[str, Any]:
    return ((get_cr(cluster.api, kind, namespace, name) or {}).get("status")) or {}


def _with_primary(status: dict[str, Any]) -> bool:
    return settled(status) and bool(status.get("primary"))


def _connect(host: str, user: str = APP_USER, password: str = APP_PASSWORD, **kw: Any) -> Any:
    return pymysql.connect(host=host, user=user, password=password, database=kw.pop("database", DATABASE),
                           connect_timeout=3, autocommit=True, **kw)  # fmt: skip


def _query(host: str, sql: str, user: str = "root", password: str = "") -> list[tuple[Any, ...]]:
    with _connect(host, user, password, database=None) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def _pod_ip(cluster: LocalCluster, namespace: str, pod: str) -> str:
    return str(client.CoreV1Api(cluster.api).read_namespaced_pod(pod, namespace).status.pod_ip)


def _report(cluster: LocalCluster, namespace: str) -> str:
    """The cluster's status and each member's last engine and agent log lines (for a failure)."""
    core, lines = client.CoreV1Api(cluster.api), [f"status: {_status(cluster, namespace)}"]
    for i in range(3):
        for container in ("engine", "agent"):
            try:
                log = core.read_namespaced_pod_log(
                    f"{NAME}-{i}", namespace, container=container, tail_lines=25
                )
            except client.ApiException as exc:
                log = f"(no log: {exc.reason})"
            lines.append(f"--- {NAME}-{i}/{container}\n{log}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def mysql_cluster(
    local_cluster: LocalCluster, operator: Operator, real_node: str, bridge_minio: MinioServer
) -> Iterator[MySQLCluster]:
    """A settled 3-member MySQL 9.7 cluster with the app and reader users and backup storage."""
    with real_namespace_named(local_cluster.api, f"real-mysql-{uuid.uuid4().hex[:6]}") as ns:
        core = client.CoreV1Api(local_cluster.api)
        app_secret(local_cluster.api, ns)
        core.patch_namespaced_secret(APP_SECRET, ns, {"stringData": {READER_KEY: READER_PASSWORD}})
        body = real_resource("DatabaseCluster", NAME, ns, "mysql", VERSION_97, DATABASE)
        body["spec"]["replicas"] = 3
        body["spec"]["users"].append(
            {
                "name": READER,
                "passwordSecretRef": {"name": APP_SECRET, "key": READER_KEY},
                "grants": [{"database": DATABASE, "privileges": ["read"]}],
            }
        )
        storage = s3_storage(local_cluster.api, ns, bridge_minio, S3_SECRET)
        body["spec"]["backup"] = {"storage": storage, "verify": True}
        apply_cr(local_cluster, body)
        try:
            wait_until(
                lambda: _with_primary(_status(local_cluster, ns)), "the cluster Ready with a primary", READY
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
        rw = str(core.read_namespaced_service(ChildNames(NAME).rw_service, ns).spec.cluster_ip)
        secret = core.read_namespaced_secret(ChildNames(NAME).credentials_secret, ns)
        root = base64.b64decode(secret.data["root-password"]).decode()
        try:
            yield MySQLCluster(ns, body, rw, root)
        finally:
            # MySQL shuts down slower than the others (InnoDB's clean shutdown): delete the resources
            # first and wait for their finalizers, so the namespace does not outlive the operator.
            custom = client.CustomObjectsApi(local_cluster.api)
            for kind in ("databaseinstances", "databaseclusters"):
                for obj in custom.list_namespaced_custom_object(GROUP, VERSION, ns, kind)["items"]:
                    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, kind, obj["metadata"]["name"])
            wait_until(
                lambda: (
                    not any(
                        custom.list_namespaced_custom_object(GROUP, VERSION, ns, k)["items"]
                        for k in ("databaseinstances", "databaseclusters")
                    )
                ),
                "the MySQL resources deleted",
                300,
            )


def test_replicas_replicate_with_gtid_auto_position_and_semi_sync(
    local_cluster: LocalCluster, mysql_cluster: MySQLCluster
) -> None:
    c = mysql_cluster
    status = _status(local_cluster, c.namespace)
    primary = status["primary"]
    replicas = [f"{NAME}-{i}" for i in range(3) if f"{NAME}-{i}" != primary]
    ips = {pod: _pod_ip(local_cluster, c.namespace, pod) for pod in [primary, *replicas]}
    assert _query(ips[primary], "SELECT @@version, @@super_read_only", password=c.root_password) == [
        ("9.7.4-2", 0)
    ]
    (acked_before,) = _query(
        ips[primary], "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_yes_tx'", password=c.root_password
    )
    with _connect(c.rw) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marks (id INT PRIMARY KEY, note VARCHAR(32))")
        for i in range(5):  # five commits (executemany would send one multi-row INSERT)
            cur.execute("INSERT INTO marks VALUES (%s, %s)", (i, f"mark-{i}"))
    (acked_after,) = _query(
        ips[primary], "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_yes_tx'", password=c.root_password
    )
    assert int(acked_after[1]) >= int(acked_before[1]) + 6, (acked_before, acked_after)  # CREATE + 5 rows
    source_gtids = _query(ips[primary], "SELECT @@gtid_executed", password=c.root_password)[0][0]

    for pod in replicas:
        ip = ips[pod]
        assert _query(ip, "SELECT @@super_read_only, @@gtid_mode", password=c.root_password) == [(1, "ON")]
        with (
            _connect(ip, "root", c.root_password, database=None) as conn,
            conn.cursor(pymysql.cursors.DictCursor) as cur,
        ):
            cur.execute("SHOW REPLICA STATUS")
            (row,) = cur.fetchall()
        assert (row["Replica_IO_Running"], row["Replica_SQL_Running"], row["Auto_Position"]) == (
            "Yes",
            "Yes",
            1,
        )
        assert row["Source_Host"].startswith(primary), row["Source_Host"]

        def caught_up(ip: str = ip) -> bool:
            got = _query(
                ip, f"SELECT GTID_SUBSET('{source_gtids}', @@gtid_executed)", password=c.root_password
            )
            return bool(got[0][0])

        wait_until(caught_up, f"{pod} applied the primary's GTIDs", 60)
        assert _query(ip, f"SELECT count(*) FROM {DATABASE}.marks", password=c.root_password) == [(5,)]


def test_users_and_grants_through_the_rw_service(
    local_cluster: LocalCluster, mysql_cluster: MySQLCluster
) -> None:
    c = mysql_cluster
    with _connect(c.rw) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO marks VALUES (100, 'by app')")
    with _connect(c.rw, READER, READER_PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM marks WHERE id = 100")
        assert cur.fetchall() == (("by app",),)
        with pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute("INSERT INTO marks VALUES (101, 'by reader')")
    assert refused.value.args[0] == 1142, refused.value  # ER_TABLEACCESS_DENIED_ERROR: INSERT command denied


def _backup_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP.plural, name
    )
    return obj.get("status") or {}


def test_logical_backup_is_verified_and_restores_into_a_new_instance(
    local_cluster: LocalCluster, mysql_cluster: MySQLCluster
) -> None:
    c = mysql_cluster
    with _connect(c.rw) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2))")
        cur.executemany(
            "INSERT INTO items VALUES (%s, %s, %s)", [(i, f"item-{i}-ünï", i / 4) for i in range(ROWS)]
        )
    apply_cr(
        local_cluster,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseBackup",
            "metadata": {"name": "dump", "namespace": c.namespace},
            "spec": {"source": {"kind": "DatabaseCluster", "name": NAME}, "method": "logical"},
        },
    )

    def verified() -> dict[str, Any] | None:
        status = _backup_status(local_cluster, c.namespace, "dump")
        assert status.get("phase") != "Failed", status
        return status if (status.get("verification") or {}).get("phase") in ("Verified", "Failed") else None

    status = wait_until(verified, "the logical backup Completed and its verification ended", 900)
    assert status["method"].startswith("logical") and status["sizeBytes"] > 0, status
    verification = status["verification"]
    assert verification["phase"] == "Verified", verification
    assert verification["tables"] >= 2 and "match the backup's row counts" in verification["message"]

    restored = real_resource("DatabaseInstance", "restored", c.namespace, "mysql", VERSION_97, DATABASE)
    restored["spec"]["restoreFrom"] = {"backup": "dump"}
    apply_cr(local_cluster, restored)
    wait_until(
        lambda: settled(_status(local_cluster, c.namespace, "DatabaseInstance", "restored")),
        "the restored instance Ready with its users",
        READY,
    )
    core = client.CoreV1Api(local_cluster.api)
    host = str(core.read_namespaced_service(ChildNames("restored").rw_service, c.namespace).spec.cluster_ip)

    def rows(h: str) -> list[tuple[Any, ...]]:
        with _connect(h) as conn, conn.cursor() as cur:
            cur.execute("SELECT id, name, price FROM items ORDER BY id")
            return list(cur.fetchall())

    got = wait_until(lambda: rows(host) or None, "rows through the restored instance's rw Service", 60)
    assert len(got) == ROWS and got == rows(c.rw)
    # The dump carried the cluster's GTIDs (--set-gtid-purged=ON): the restored server has executed them.
    ip = _pod_ip(local_cluster, c.namespace, ChildNames("restored").pod(0))
    gtids = _query(
        ip, "SELECT @@gtid_executed", password=_root_password(local_cluster, c.namespace, "restored")
    )
    assert gtids[0][0], gtids


def _root_password(cluster: LocalCluster, namespace: str, name: str) -> str:
    secret = client.CoreV1Api(cluster.api).read_namespaced_secret(
        ChildNames(name).credentials_secret, namespace
    )
    return base64.b64decode(secret.data["root-password"]).decode()


class Writer(threading.Thread):
    """Inserts numbered rows through the rw Service; records the ids whose COMMIT was acknowledged and
    the longest time between two acknowledged commits (the client-visible write gap)."""

    def __init__(self, host: str) -> None:
        super().__init__(daemon=True)
        self.host, self.stop, self.errors, self.gap = host, threading.Event(), 0, 0.0
        self.acked: list[int] = []
        self._next = 0

    def run(self) -> None:
        conn, last = None, time.monotonic()
        while not self.stop.is_set():
            try:
                # read_timeout: a commit blocked on a lost semi-sync acknowledgement must not hang the test.
                conn = conn or _connect(self.host, read_timeout=20, write_timeout=5)
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO acked (id) VALUES (%s)", (self._next,))
                self.acked.append(self._next)  # only after the server acknowledged the autocommit
                now = time.monotonic()
                self.gap, last = max(self.gap, now - last), now
                self._next += 1
                time.sleep(0.05)
            except pymysql.err.MySQLError:
                self.errors += 1
                self._next += 1  # an unacknowledged id is never retried: it may or may not exist
                conn = None
                time.sleep(0.2)


def _fail_then_switch(
    local_cluster: LocalCluster, c: MySQLCluster, old: str, writer: Writer
) -> tuple[str, str, float]:
    """Delete the primary's pod, then switch over to another healthy member, under ``writer``'s writes:
    (the new primary, the switchover target, the longest write gap of the failover)."""
    ns = c.namespace
    wait_until(lambda: len(writer.acked) >= 20, "20 acknowledged writes before the failure")
    client.CoreV1Api(local_cluster.api).delete_namespaced_pod(old, ns)
    before = len(writer.acked)
    try:
        wait_until(lambda: len(writer.acked) >= before + 20, "20 writes through rw after the failure", 300)
        wait_until(lambda: _with_primary(_status(local_cluster, ns)), "the cluster settled again", 300)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
    new = _status(local_cluster, ns)["primary"]
    failover_gap = writer.gap

    # Switchover to a healthy replica that is not the current primary.
    status = _status(local_cluster, ns)
    target = next(m["pod"] for m in status["members"] if m["pod"] != new and m.get("healthy"))
    c.body["spec"]["primary"] = target
    apply_cr(local_cluster, c.body)
    before = len(writer.acked)
    try:
        wait_until(
            lambda: _status(local_cluster, ns).get("primary") == target, f"switchover to {target}", 300
        )
        wait_until(lambda: len(writer.acked) >= before + 20, "20 writes through rw after the switchover", 120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
    return new, target, failover_gap


def test_primary_pod_deleted_then_switchover_under_writes_loses_no_acknowledged_write(
    local_cluster: LocalCluster, mysql_cluster: MySQLCluster
) -> None:
    c, ns = mysql_cluster, mysql_cluster.namespace
    with _connect(c.rw) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE acked (id INT PRIMARY KEY)")
    old = _status(local_cluster, ns)["primary"]
    writer = Writer(c.rw)
    writer.start()
    try:  # the writer stops whatever happens: a later test's backup must not run under its writes
        new, target, failover_gap = _fail_then_switch(local_cluster, c, old, writer)
    finally:
        writer.stop.set()
        writer.join(timeout=30)

    with _connect(c.rw) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM acked")
        present = {row[0] for row in cur.fetchall()}
    lost = sorted(set(writer.acked) - present)
    assert not lost, f"acknowledged writes missing ({old} -> {new} -> {target}): {lost[:20]} (of {len(lost)})"
    print(f"\nmysql on pods: failover {old} -> {new} (longest write gap {failover_gap:.1f} s), switchover -> "
          f"{target} (longest gap overall {writer.gap:.1f} s); {len(writer.acked)} acknowledged, "
          f"{writer.errors} client errors, 0 lost")  # fmt: skip


def test_physical_clone_backup_is_verified_and_restores_into_a_new_instance(
    local_cluster: LocalCluster, mysql_cluster: MySQLCluster
) -> None:
    """The clone plugin's copy (CLONE LOCAL into the emptyDir both containers mount, streamed as a tar),
    verified by the operator, then placed in a new instance's empty data directory by its restore init
    container before mysqld starts: the same rows, and its own server_uuid."""
    c, custom = mysql_cluster, client.CustomObjectsApi(local_cluster.api)
    # The logical test's instance is done with: its memory is the next restore's.
    custom.delete_namespaced_custom_object(GROUP, VERSION, c.namespace, "databaseinstances", "restored")
    apply_cr(
        local_cluster,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DatabaseBackup",
            "metadata": {"name": "clone", "namespace": c.namespace},
            "spec": {"source": {"kind": "DatabaseCluster", "name": NAME}, "method": "physical"},
        },
    )

    def verified() -> dict[str, Any] | None:
        status = _backup_status(local_cluster, c.namespace, "clone")
        assert status.get("phase") != "Failed", status
        return status if (status.get("verification") or {}).get("phase") in ("Verified", "Failed") else None

    status = wait_until(verified, "the clone backup Completed and its verification ended", 900)
    assert status["method"].startswith("physical") and status["sizeBytes"] > 0, status
    assert status["verification"]["phase"] == "Verified", status["verification"]

    cloned = real_resource("DatabaseInstance", "cloned", c.namespace, "mysql", VERSION_97, DATABASE)
    cloned["spec"]["restoreFrom"] = {"backup": "clone"}
    apply_cr(local_cluster, cloned)
    wait_until(
        lambda: settled(_status(local_cluster, c.namespace, "DatabaseInstance", "cloned")),
        "the instance restored from the clone Ready with its users",
        READY,
    )
    core = client.CoreV1Api(local_cluster.api)
    host = str(core.read_namespaced_service(ChildNames("cloned").rw_service, c.namespace).spec.cluster_ip)

    def rows(h: str) -> list[tuple[Any, ...]]:
        with _connect(h) as conn, conn.cursor() as cur:
            cur.execute("SELECT id, name, price FROM items ORDER BY id")
            return list(cur.fetchall())

    got = wait_until(lambda: rows(host) or None, "rows through the cloned instance's rw Service", 60)
    assert len(got) == ROWS and got == rows(c.rw)
    ip = _pod_ip(local_cluster, c.namespace, ChildNames("cloned").pod(0))
    password = _root_password(local_cluster, c.namespace, "cloned")
    ((uuid_cloned, gtids),) = _query(ip, "SELECT @@server_uuid, @@gtid_executed", password=password)
    members = {
        _query(
            _pod_ip(local_cluster, c.namespace, f"{NAME}-{i}"),
            "SELECT @@server_uuid",
            password=c.root_password,
        )[0][0]
        for i in range(3)
    }
    assert gtids and uuid_cloned not in members, (uuid_cloned, members)
