"""Cassandra on real pods: a 3-node ring of the images hack/images builds (``cassandra:5.0.9``: the
Apache jars from Maven Central on Debian's OpenJDK 17; its agent ``agent-cassandra:0.1.0``: the same JRE
and jars, so nodetool works in the pod), on the real node.

One DatabaseCluster serves the whole file (module-scoped; the tests run in file order):

1. Ready: the nodes joined one at a time (each new member waits for the one before it), and
   ``status.members`` tells the truth: each pod's node is UN with 16 tokens, and its host id and address
   are what the node itself says (``system.local``, read over CQL from the host at the pod's IP).
2. The keyspace of the spec has replication factor 3 (the ring's size); the app user writes rows at
   QUORUM through the read-write Service and reads them back at QUORUM and ALL through the read-only one.
3. Users and grants as the spec says: the ``read`` user reads and the server refuses it a write.
4. A DatabaseBackup of the ring: one ``nodetool snapshot`` per node, taken by the agents (nodetool in
   the agent container, over JMX on the pod's loopback) and sent to a real MinIO; ``status.nodes``
   names each node's host id, address and 16 tokens, as ``status.members`` does.
5. ``restoreFrom`` that backup into a new ring of three: member i restores node i's snapshot with its
   tokens; Ready, each node owning its source node's tokens, every row there at ALL.

The host's client connects to Services' ClusterIPs and to pod IPs (kube-proxy and the CNI bridge).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cassandra import ConsistencyLevel, Unauthorized
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement
from kubernetes import client

from kubetrove.api.resources import BACKUP
from kubetrove.render.names import ChildNames
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, Operator, apply_cr, get_cr
from .conftest import (
    APP_PASSWORD,
    APP_USER,
    app_secret,
    real_namespace_named,
    real_resource,
    s3_storage,
    settled,
)

NAME, KEYSPACE, S3_SECRET = "cs", "orders", "backup-s3"
READER, READER_PASSWORD, READER_SECRET = "reader", "reader-Secret-42", "reader-password"
OWNER, OWNER_PASSWORD, OWNER_SECRET = "owner", "owner-Secret-42", "owner-password"
PORT = 9042
NODES = 3
# Three JVM starts one after the other on 2 shared cores: the seed, then each joining node (Cassandra's
# own ring delay and pending-range sleep, 30 s each, are part of every join).
READY = 1200
ROWS = 200


def _status(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, kind, namespace, name) or {}).get("status")) or {}


def _session(host: str, user: str = APP_USER, password: str = APP_PASSWORD) -> tuple[Cluster, Session]:
    """A session to ``host`` only (a Service's ClusterIP or a pod IP): every request goes there, so what
    answers is whatever node the Service routes to."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=30)
    cluster = Cluster(
        [host],
        port=PORT,
        auth_provider=PlainTextAuthProvider(user, password),
        protocol_version=5,
        connect_timeout=10,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        return cluster, cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise


def _service_ip(cluster: LocalCluster, namespace: str, service: str) -> str:
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(service, namespace).spec.cluster_ip)


def _pods(cluster: LocalCluster, namespace: str, name: str = NAME) -> list[Any]:
    core = client.CoreV1Api(cluster.api)
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={name}").items
    return sorted(pods, key=lambda p: p.metadata.name)


def _report(cluster: LocalCluster, namespace: str, name: str = NAME) -> str:
    """The resource's status and, per pod, container states and the last lines of each log."""
    core = client.CoreV1Api(cluster.api)
    lines = [f"status of {name}: {_status(cluster, 'DatabaseCluster', namespace, name)}"]
    for pod in _pods(cluster, namespace, name):
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


@dataclass
class Ring:
    namespace: str
    body: dict[str, Any]
    rw: str  # ClusterIPs
    ro: str


def _spec(namespace: str, minio: MinioServer, cluster: LocalCluster) -> dict[str, Any]:
    body = real_resource("DatabaseCluster", NAME, namespace, "cassandra", "5.0", KEYSPACE)
    spec = body["spec"]
    spec["replicas"] = NODES
    spec["databases"] = [{"name": KEYSPACE, "replicationFactor": NODES}]
    # The strategy pins a 1 GiB heap (MAX_HEAP_SIZE); off-heap structures and the JVM itself come on top.
    spec["resources"] = {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    spec["users"] += [
        {"name": READER, "passwordSecretRef": {"name": READER_SECRET, "key": "password"},
         "grants": [{"database": KEYSPACE, "privileges": ["read"]}]},
        {"name": OWNER, "passwordSecretRef": {"name": OWNER_SECRET, "key": "password"},
         "grants": [{"database": KEYSPACE, "privileges": ["admin"]}]},
    ]  # fmt: skip
    spec["backup"] = {"storage": s3_storage(cluster.api, namespace, minio, S3_SECRET)}
    return body


def _ring_ready(status: dict[str, Any]) -> bool:
    members = status.get("members") or []
    return settled(status) and len(members) == NODES and all(m.get("ringState") == "UN" for m in members)


@pytest.fixture(scope="module")
def ring(
    local_cluster: LocalCluster, operator: Operator, real_node: str, bridge_minio: MinioServer
) -> Iterator[Ring]:
    """A settled 3-node Cassandra DatabaseCluster on the real node, with the app and reader users."""
    with real_namespace_named(local_cluster.api, f"real-cass-{uuid.uuid4().hex[:6]}") as ns:
        app_secret(local_cluster.api, ns)
        for secret, password in ((READER_SECRET, READER_PASSWORD), (OWNER_SECRET, OWNER_PASSWORD)):
            client.CoreV1Api(local_cluster.api).create_namespaced_secret(
                ns,
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name=secret), string_data={"password": password}
                ),
            )
        body = _spec(ns, bridge_minio, local_cluster)
        apply_cr(local_cluster, body)
        started = time.monotonic()
        try:
            wait_until(
                lambda: _ring_ready(_status(local_cluster, "DatabaseCluster", ns, NAME)),
                "the ring Ready: 3 nodes UN, users and keyspace applied",
                READY,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
        print(f"cassandra: {NODES} nodes UN and Ready in {time.monotonic() - started:.0f}s")
        names = ChildNames(NAME)
        yield Ring(
            ns,
            body,
            _service_ip(local_cluster, ns, names.rw_service),
            _service_ip(local_cluster, ns, names.ro_service),
        )
    wait_until(lambda: _namespace_gone(local_cluster, ns), f"namespace {ns} deleted", 300)


def _namespace_gone(cluster: LocalCluster, namespace: str) -> bool:
    try:
        client.CoreV1Api(cluster.api).read_namespace(namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _rss_mib(pod_uid: str, command: str) -> int | None:
    """The resident memory of the pod's process running ``command`` (its cgroup names the pod's uid), seen
    from the host (the real node's containers are the host's processes); None if there is none."""
    marks = (pod_uid, pod_uid.replace("-", "_"))
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or command not in (proc / "cmdline").read_text():
                continue
            if not any(m in (proc / "cgroup").read_text() for m in marks):
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        return next(int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
    return None


def test_status_members_are_the_ring_each_node_describes(local_cluster: LocalCluster, ring: Ring) -> None:
    status = _status(local_cluster, "DatabaseCluster", ring.namespace, NAME)
    members = {m["pod"]: m for m in status["members"]}
    pods = _pods(local_cluster, ring.namespace)
    assert sorted(members) == [p.metadata.name for p in pods] == [f"{NAME}-{i}" for i in range(NODES)]
    assert {p.spec.node_name for p in pods} == {pods[0].spec.node_name}  # the real node
    assert status.get("primary") is None  # a ring has none
    for pod in pods:
        ip = pod.status.pod_ip
        # What the node says about itself, from the host straight to the pod's IP.
        cluster, session = _session(ip)
        try:
            local = session.execute("SELECT host_id, broadcast_address, tokens FROM system.local").one()
            peers = {str(r.peer) for r in session.execute("SELECT peer FROM system.peers")}
        finally:
            cluster.shutdown()
        member = members[pod.metadata.name]
        assert member["ringState"] == "UN", member
        assert member["hostId"] == str(local.host_id), (member, local)
        assert member["address"] == ip == str(local.broadcast_address), (member, local)
        assert member["tokens"] == len(local.tokens) == 16, member
        assert member.get("load"), member
        assert peers == {p.status.pod_ip for p in pods} - {ip}
    assert len({m["hostId"] for m in members.values()}) == NODES
    rss = {p.metadata.name: _rss_mib(p.metadata.uid, "CassandraDaemon") for p in pods}
    print(f"cassandra: RSS per node (MiB): {rss}")


def test_rf3_keyspace_written_at_quorum_through_rw_read_through_ro(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    # The admin user makes the table (readWrite is SELECT + MODIFY: the server refuses app a CREATE).
    cluster, session = _session(ring.rw, OWNER, OWNER_PASSWORD)
    try:
        (keyspace,) = session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (KEYSPACE,)
        )
        assert keyspace.replication["replication_factor"] == str(NODES), keyspace.replication
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.items (id int PRIMARY KEY, note text)", timeout=60
        )
    finally:
        cluster.shutdown()

    cluster, session = _session(ring.rw)
    try:
        with pytest.raises(Unauthorized, match="has no CREATE permission"):
            session.execute(f"CREATE TABLE {KEYSPACE}.other (id int PRIMARY KEY)")
        insert = session.prepare(f"INSERT INTO {KEYSPACE}.items (id, note) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.QUORUM
        for i in range(ROWS):
            session.execute(insert, (i, f"row {i} through rw"))
    finally:
        cluster.shutdown()

    cluster, session = _session(ring.ro)
    try:
        for level in (ConsistencyLevel.QUORUM, ConsistencyLevel.ALL):
            read = SimpleStatement(f"SELECT id, note FROM {KEYSPACE}.items", consistency_level=level)
            rows = sorted((r.id, r.note) for r in session.execute(read, timeout=60))
            assert rows == [(i, f"row {i} through rw") for i in range(ROWS)], level
    finally:
        cluster.shutdown()


def test_the_server_refuses_a_write_to_a_read_user(local_cluster: LocalCluster, ring: Ring) -> None:
    cluster, session = _session(ring.rw, READER, READER_PASSWORD)
    try:
        read = SimpleStatement(
            f"SELECT count(*) FROM {KEYSPACE}.items", consistency_level=ConsistencyLevel.QUORUM
        )
        assert session.execute(read, timeout=60).one()[0] == ROWS  # SELECT: granted
        with pytest.raises(Unauthorized, match="has no MODIFY permission"):
            session.execute(f"INSERT INTO {KEYSPACE}.items (id, note) VALUES (-1, 'by reader')")
    finally:
        cluster.shutdown()
    with pytest.raises(NoHostAvailable, match=r"[Pp]rovided username .* and/or password are incorrect"):
        _session(ring.rw, READER, "not-the-password")


def _backup_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP.plural, name
    )
    return obj.get("status") or {}


def test_a_backup_of_the_ring_snapshots_every_node(local_cluster: LocalCluster, ring: Ring) -> None:
    ns = ring.namespace
    apply_cr(local_cluster, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DatabaseBackup",
        "metadata": {"name": "full", "namespace": ns},
        "spec": {"source": {"kind": "DatabaseCluster", "name": NAME}},
    })  # fmt: skip

    def completed() -> dict[str, Any] | None:
        status = _backup_status(local_cluster, ns, "full")
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Completed" else None

    try:
        backup = wait_until(completed, "DatabaseBackup full Completed", 600)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
    members = {m["pod"]: m for m in _status(local_cluster, "DatabaseCluster", ns, NAME)["members"]}
    nodes = backup["nodes"]
    assert [n["pod"] for n in nodes] == sorted(members), nodes
    for node in nodes:
        member = members[node["pod"]]
        assert (node["hostId"], node["address"], node["tokens"]) == (member["hostId"], member["address"], 16)
    assert backup["engine"] == "cassandra" and backup["sizeBytes"] == sum(n["sizeBytes"] for n in nodes) > 0


def _tokens(ip: str) -> list[str]:
    """The tokens the node at ``ip`` owns (system.local), sorted as numbers."""
    cluster, session = _session(ip)
    try:
        return sorted(session.execute("SELECT tokens FROM system.local").one().tokens, key=int)
    finally:
        cluster.shutdown()


def test_the_ring_backup_restores_into_a_new_ring_of_three(local_cluster: LocalCluster, ring: Ring) -> None:
    """``restoreFrom`` the backup above: member i's init container (the agent image) puts node i's
    snapshot and tokens on its volume, so each new node owns its source node's ranges and every row is
    there at ALL, as the spec's user sees it through the new ring's rw Service."""
    ns, copy = ring.namespace, "copy"
    body = real_resource("DatabaseCluster", copy, ns, "cassandra", "5.0", KEYSPACE)
    body["spec"] |= {
        "replicas": NODES,
        "databases": [{"name": KEYSPACE, "replicationFactor": NODES}],
        "resources": ring.body["spec"]["resources"],
        "restoreFrom": {"backup": "full"},
    }
    apply_cr(local_cluster, body)
    started = time.monotonic()

    def restored() -> bool:
        status = _status(local_cluster, "DatabaseCluster", ns, copy)
        members = status.get("members") or []
        return _ring_ready(status) and len(members) == NODES

    try:
        wait_until(restored, "the restored ring Ready with 3 nodes UN", READY)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns, copy)}") from None
    print(f"cassandra: the restored ring Ready in {time.monotonic() - started:.0f}s")
    core = client.CoreV1Api(local_cluster.api)
    for i in range(NODES):
        source = core.read_namespaced_pod(f"{NAME}-{i}", ns).status.pod_ip
        target = core.read_namespaced_pod(f"{copy}-{i}", ns).status.pod_ip
        assert _tokens(target) == _tokens(source), i
    cluster, session = _session(_service_ip(local_cluster, ns, ChildNames(copy).rw_service))
    try:
        read = SimpleStatement(
            f"SELECT id, note FROM {KEYSPACE}.items", consistency_level=ConsistencyLevel.ALL
        )
        rows = sorted((r.id, r.note) for r in session.execute(read, timeout=60))
    finally:
        cluster.shutdown()
    assert rows == [(i, f"row {i} through rw") for i in range(ROWS)]
