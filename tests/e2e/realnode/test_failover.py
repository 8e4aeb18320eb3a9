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
import sys
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


# The cut-off client: runs inside the primary's network namespace (nsenter), so it keeps reaching the
# server on 127.0.0.1 when the pod is cut off from everything else; one line per acknowledged insert.
_CUT_OFF_CLIENT = """
import sys, time, pymysql
user, password, database, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = pymysql.connect(host="127.0.0.1", user=user, password=password, database=database, autocommit=True,
                       connect_timeout=3, read_timeout=600, write_timeout=600)
i = first
while True:
    i += 1
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acked (id) VALUES (%s)", (i,))
    except pymysql.err.MySQLError as exc:
        print(f"ERR {i} {time.time():.3f} {exc.args[0]}", flush=True)
        break
    print(f"ACK {i} {time.time():.3f}", flush=True)
    time.sleep(0.05)
"""


def _in_netns(pid: int, *command: str, check: bool = True) -> str:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *command],
                          check=check, capture_output=True, text=True).stdout  # fmt: skip


def test_a_primary_cut_off_from_the_network_acknowledges_nothing_the_new_primary_lacks(
    local_cluster: LocalCluster, ha_cluster: tuple[str, str]
) -> None:
    """Fencing under partition on the real node (docs/clustering.md, "Demoting a primary"): the primary's
    pod loses its network (its interface down, in its own network namespace) while a client INSIDE that
    namespace keeps writing and the Service's clients write too. The operator fails over; the cut-off
    primary acknowledges nothing after the cut that the new primary lacks; once the network is back, the
    old primary is fenced and its waiting client gets an error, never a success."""
    ns, host = ha_cluster
    old = _status(local_cluster, ns)["primary"]
    pid = _engine_host_pid(local_cluster, ns, old)
    cut_off = subprocess.Popen(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", _CUT_OFF_CLIENT,
         USER, PASSWORD, DATABASE, "1000000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(cut_off.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    writer = Writer(host)
    writer.start()
    try:
        wait_until(
            lambda: sum(1 for x in lines if x.startswith("ACK")) >= 20, "20 writes by the cut-off client"
        )
        wait_until(lambda: len(writer.acked) >= 20, "20 writes through the rw Service")
        links = [
            line.split(":")[1].strip().split("@")[0]
            for line in _in_netns(pid, "ip", "-o", "link").splitlines()
        ]
        iface = next(name for name in links if name != "lo")
        routes = [r for r in _in_netns(pid, "ip", "route").splitlines() if r.strip()]
        cut_at = time.time()
        _in_netns(pid, "ip", "link", "set", iface, "down")
        try:
            wait_until(lambda: _status(local_cluster, ns).get("primary") not in (None, old),
                       "a new primary after the cut", timeout=240)  # fmt: skip
            promoted_at = time.time()
            before = len(writer.acked)
            wait_until(
                lambda: len(writer.acked) >= before + 20, "writes through rw on the new primary", timeout=120
            )
        finally:
            _in_netns(pid, "ip", "link", "set", iface, "up")
            for route in routes:  # a link going down takes its routes with it
                _in_netns(pid, "ip", "route", "replace", *route.split(), check=False)
        # Back on the network: the loop fences the old primary, which ends the waiting client's session.
        cut_off.wait(timeout=180)
        wait_until(
            lambda: _with_primary(_status(local_cluster, ns)), "the cluster settled again", timeout=240
        )
    finally:
        writer.stop.set()
        writer.join(timeout=30)
        if cut_off.poll() is None:
            cut_off.kill()
        reader.join(timeout=10)

    acks = [(int(x.split()[1]), float(x.split()[2])) for x in lines if x.startswith("ACK")]
    after_cut = [t - cut_at for _, t in acks if t > cut_at]
    after_promotion = [i for i, t in acks if t >= promoted_at]
    print(f"partition of {old}: promoted a new primary {promoted_at - cut_at:.1f}s after the cut; the cut-off"
          f" client's last acknowledgement {max(after_cut, default=0.0):.2f}s after it; its end:"
          f" {[x for x in lines if x.startswith('ERR')]}")  # fmt: skip
    assert not after_promotion, (
        f"the cut-off primary acknowledged writes after the promotion: {after_promotion}"
    )
    with _connect(host) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM acked")
        present = {row[0] for row in cur.fetchall()}
    lost = sorted({i for i, _ in acks} - present) + sorted(set(writer.acked) - present)
    assert not lost, f"acknowledged writes missing after the partition of {old}: {lost[:20]} (of {len(lost)})"
