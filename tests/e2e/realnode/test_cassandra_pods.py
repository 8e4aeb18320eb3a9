"""Cassandra on real pods: the images hack/images builds (``cassandra:5.0.9``: the Apache jars from
Maven Central on Debian's OpenJDK 17; its agent ``agent-cassandra:0.1.0``: the same JRE and jars, so
nodetool works in the pod), pulled from the local registry and run on the real node by the operator.

A ring of ONE node (a DatabaseCluster with ``replicas: 1``) serves the whole file (module-scoped; the
tests run in file order). One node keeps the e2e tier inside the CI budget: a ring of three on pods
(Ready in ~250 s, its backup restored into a new ring of three) passed alone and is in the history
(commits 203ce2e and 500ec00); the three-node ring, its failures and its restore run in the integration
tier on the host (tests/integration/test_cassandra_ring*.py).

1. Ready, and ``status.members`` tells the truth: the pod's node is UN with 16 tokens, and its host id
   and address are what the node itself says (``system.local``, read over CQL at the pod's IP).
2. The keyspace of the spec (replication factor 1); the app user writes rows through the read-write
   Service and reads them back through the read-only one; the server refuses it a CREATE.
3. Users and grants as the spec says: the ``read`` user reads and the server refuses it a write.
4. The agent serves the node's log and its slow reads (``system_views.system_logs``; the spec sets
   ``slow_query_log_timeout`` to 10 ms).
5. A DatabaseBackup: ``nodetool snapshot`` by the agent (nodetool in the agent container, over JMX on
   the pod's loopback), sent to a real MinIO; ``status.nodes`` names the node's host id and 16 tokens.

The module runs last in its session and takes the machine's Cassandra turn first (tests/conftest.py,
LAST; hold_jvm_turn): the integration tier, beside it in make test, runs Cassandra JVMs of its own.
The host's client connects to Services' ClusterIPs and to the pod IP (kube-proxy and the CNI bridge).
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
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement
from kubernetes import client

from kubetrove.api.resources import BACKUP
from kubetrove.render.names import ChildNames
from tests.integration.servers.cassandra import hold_jvm_turn
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, Operator, apply_cr, get_cr
from .conftest import (
    APP_PASSWORD,
    APP_USER,
    agent_logs,
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
NODES = 1
READY = 600  # one JVM start on 2 shared cores, the image pulled first
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
    spec["parameters"] = {"slow_query_log_timeout": "10"}  # ms: reads the agent then reports as slow
    return body


def _ring_ready(status: dict[str, Any]) -> bool:
    members = status.get("members") or []
    return settled(status) and len(members) == NODES and all(m.get("ringState") == "UN" for m in members)


@pytest.fixture(scope="module")
def ring(
    local_cluster: LocalCluster, operator: Operator, real_node: str, bridge_minio: MinioServer
) -> Iterator[Ring]:
    """A settled one-node Cassandra DatabaseCluster on the real node, with the app and reader users."""
    hold_jvm_turn()  # no other test process runs Cassandra JVMs from here to this session's end
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
                "the ring Ready: its node UN, users and keyspace applied",
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


def test_keyspace_written_at_quorum_through_rw_read_through_ro(
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


def test_the_agent_serves_the_node_log_and_its_slow_reads(local_cluster: LocalCluster, ring: Ring) -> None:
    """The image's logback.xml fills ``system_views.system_logs``: GET /v1/logs/error has the node's own
    records, GET /v1/logs/slow the reads MonitoringTask found slower than the spec's 10 ms."""
    (pod,) = _pods(local_cluster, ring.namespace)
    marker = f"kt-slow-{uuid.uuid4().hex[:8]}"
    # A scan of the module's 200 rows is not always over 10 ms (CI saw none reported in 120 s): a table of
    # its own with 3000 rows, which a filtering scan takes ~18 ms to read on an idle host. The admin user
    # makes it (app may not CREATE), app fills and reads it.
    owner, owner_session = _session(ring.rw, OWNER, OWNER_PASSWORD)
    try:
        owner_session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.scanned (id int PRIMARY KEY, note text)", timeout=60
        )
    finally:
        owner.shutdown()
    cluster, session = _session(ring.rw)
    insert = session.prepare(f"INSERT INTO {KEYSPACE}.scanned (id, note) VALUES (?, ?)")
    execute_concurrent_with_args(session, insert, [(i, f"row {i}") for i in range(3000)], concurrency=50)
    read = f"SELECT id FROM {KEYSPACE}.scanned WHERE note = '{marker}' ALLOW FILTERING"

    def reported() -> Any:
        session.execute(read, timeout=60)  # again each poll: MonitoringTask reports what it saw every 5 s
        slow, errors = agent_logs(local_cluster.api, ring.namespace, NAME, pod)
        return (slow, errors) if any(marker in e.query for e in slow.entries) else None

    try:
        slow, errors = wait_until(reported, f"the read {read!r} in GET /v1/logs/slow", 240)
    finally:
        cluster.shutdown()
    entry = next(e for e in slow.entries if marker in e.query)
    assert entry.database == KEYSPACE and entry.duration_seconds >= 0.01, entry
    assert any(e.message.startswith("[StorageService] ") for e in errors.entries), errors.entries[-5:]
    assert {e.level for e in errors.entries} <= {"INFO", "WARN", "ERROR"}


def _backup_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP.plural, name
    )
    return obj.get("status") or {}


def test_a_backup_snapshots_the_node_with_its_host_id_and_tokens(
    local_cluster: LocalCluster, ring: Ring
) -> None:
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
