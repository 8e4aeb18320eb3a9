"""Cassandra on real pods: a ring of three of the images hack/images builds (``cassandra:5.0.8`` and
``cassandra:5.0.9``: the Apache jars from Maven Central on Debian's OpenJDK 17; their agents
``agent-cassandra-5.0.8:0.1.0`` and ``agent-cassandra:0.1.0``: the same JRE and jars, so nodetool works in
the pod), pulled from the local registry and run on the real node by the
operator (docs/clustering.md, "Cassandra").

ONE DatabaseCluster of three serves the whole file (module-scoped: the steps run in file order, each
prints its duration; a step leaves the ring 3x UN for the next):

1. Ready (the nodes joined one at a time), and ``status.members`` tells the truth: each node UN with 16
   tokens, its host id and address what the node itself says over CQL at its pod IP.
2. The spec's keyspace has replication factor 3; the app user writes at QUORUM through the rw Service and
   reads back at QUORUM and ALL through the ro one; the server refuses it a CREATE, the reader a write.
3. The agents serve their node's log and its slow reads (the spec's ``slow_query_log_timeout``).
4. A DatabaseBackup of the ring: every node's ``nodetool snapshot`` in a real MinIO, with its tokens.
5. ``spec.backup.verify`` on: the operator restores that backup into a throwaway ring of three, asks every
   member, marks the backup Verified and deletes the throwaway ring (cassandra_ring_verify.py).
6. A minor upgrade (5.0.8 -> 5.0, Cassandra 5.0.9) with a restart parameter rolls the ring one node at a
   time, never two nodes down at once; every node then runs 5.0.9.
7. A scale-down below a keyspace made over CQL is refused before anything changes; the spec is still
   handled, and putting it back is a change like any other (cassandra_ring_scale.py).
8. The same scale-down goes through by itself once that keyspace is lowered over CQL; a node bootstraps
   back.
9. A node crashed under QUORUM writes with RF 3: no acknowledged write lost, DN then UN
   (cassandra_ring_steps.py).
10. Node 0, the seed, loses its volume and is replaced by a new node with its tokens
    (replace_address_first_boot, member 1 as the replacement's seed).
11. ``replicas: 4`` then 3: a bootstrap, then a decommission before the StatefulSet shrinks.
12. ``restoreFrom`` the backup of step 4 into a new ring of three; ``POST /v1/verify`` on a restored
    member. Last: the restored ring's three JVMs would otherwise share the two cores with the steps above.

The spec sets ``ring_delay`` to 5 s (``spec.parameters``; Cassandra's default is 30 s): every join, leave
and replacement sleeps it twice.

The module runs last in its session and takes the machine's Cassandra turn first (tests/conftest.py,
LAST; hold_jvm_turn): the integration tier, beside it in make test, runs Cassandra JVMs of its own.
The host's client connects to Services' ClusterIPs and to pod IPs (kube-proxy and the CNI bridge).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cassandra import ConsistencyLevel, Unauthorized
from cassandra.cluster import NoHostAvailable
from cassandra.concurrent import execute_concurrent_with_args
from kubernetes import client

from kubetrove.agent.protocol import RestoreRequest, VerifyReply, VerifyRequest
from kubetrove.api.resources import BACKUP
from kubetrove.render.names import RESTORE_REQUEST_KEY, ChildNames
from tests.integration.servers.cassandra import hold_jvm_turn
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, LEASE_NAMESPACE, VERSION, Operator, apply_cr
from .agent_tls_checks import operator_like_client
from .cassandra_pods import (
    pods_of,
    report,
    rows_at,
    rss_mib,
    service_ip,
    session,
    status_of,
)
from .cassandra_ring_scale import refused_scale_down, scale_out_and_back, shrinks_once_lowered_then_grows_back
from .cassandra_ring_steps import (
    KEYSPACE,
    NAME,
    NODES,
    OWNER,
    OWNER_PASSWORD,
    READER,
    READER_PASSWORD,
    RING_DELAY_MS,
    ROWS,
    Ring,
    crash_under_quorum_writes,
    replace_lost_volume,
    ring_ready,
    roll_one_at_a_time,
    start_ring,
    tokens_of,
)
from .cassandra_ring_verify import verify_ring_backup
from .conftest import agent_logs, real_resource, settled

READY = 900  # three JVM starts one after the other on 2 shared cores


@pytest.fixture(autouse=True)
def _timed(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each step's duration (the module's budget in make test is ~15 minutes: docs/development.md)."""
    started = time.monotonic()
    yield
    print(f"\ncassandra step {request.node.name}: {time.monotonic() - started:.0f}s")


@pytest.fixture(scope="module")
def ring(
    local_cluster: LocalCluster, operator: Operator, real_node: str, bridge_minio: MinioServer
) -> Iterator[Ring]:
    """A settled Cassandra DatabaseCluster of three on the real node, with the app, reader and owner."""
    hold_jvm_turn()  # no other test process runs Cassandra JVMs from here to this session's end
    with start_ring(local_cluster, bridge_minio, f"real-cass-{uuid.uuid4().hex[:6]}", READY) as ring:
        yield ring


def test_status_members_are_the_ring_each_node_describes(local_cluster: LocalCluster, ring: Ring) -> None:
    status = status_of(local_cluster, "DatabaseCluster", ring.namespace, NAME)
    members = {m["pod"]: m for m in status["members"]}
    pods = pods_of(local_cluster, ring.namespace, NAME)
    assert sorted(members) == [p.metadata.name for p in pods] == [f"{NAME}-{i}" for i in range(NODES)]
    assert {p.spec.node_name for p in pods} == {pods[0].spec.node_name}  # the real node
    assert status.get("primary") is None  # a ring has none
    for pod in pods:
        ip = pod.status.pod_ip
        # What the node says about itself, from the host straight to the pod's IP.
        cluster, s = session(ip)
        try:
            local = s.execute("SELECT host_id, broadcast_address, tokens FROM system.local").one()
            peers = {str(r.peer) for r in s.execute("SELECT peer FROM system.peers")}
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
    print(f"cassandra: RSS per node (MiB): { {p.metadata.name: rss_mib(p.metadata.uid) for p in pods} }")


def test_rf3_keyspace_written_at_quorum_through_rw_read_through_ro(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    # The admin user makes the table (readWrite is SELECT + MODIFY: the server refuses app a CREATE).
    cluster, s = session(ring.rw, OWNER, OWNER_PASSWORD)
    try:
        (keyspace,) = s.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (KEYSPACE,)
        )
        assert keyspace.replication["replication_factor"] == str(NODES), keyspace.replication
        s.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.items (id int PRIMARY KEY, note text)", timeout=60)
    finally:
        cluster.shutdown()

    cluster, s = session(ring.rw)
    try:
        with pytest.raises(Unauthorized, match="has no CREATE permission"):
            s.execute(f"CREATE TABLE {KEYSPACE}.other (id int PRIMARY KEY)")
        insert = s.prepare(f"INSERT INTO {KEYSPACE}.items (id, note) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.QUORUM
        for i in range(ROWS):
            s.execute(insert, (i, f"row {i} through rw"))
    finally:
        cluster.shutdown()
    for level in (ConsistencyLevel.QUORUM, ConsistencyLevel.ALL):
        rows = rows_at(ring.ro, f"SELECT id, note FROM {KEYSPACE}.items", level)
        assert sorted((r.id, r.note) for r in rows) == [(i, f"row {i} through rw") for i in range(ROWS)]


def test_the_server_refuses_a_write_to_a_read_user(local_cluster: LocalCluster, ring: Ring) -> None:
    count = f"SELECT count(*) FROM {KEYSPACE}.items"
    assert rows_at(ring.rw, count, ConsistencyLevel.QUORUM, READER, READER_PASSWORD)[0][0] == ROWS
    cluster, s = session(ring.rw, READER, READER_PASSWORD)
    try:
        with pytest.raises(Unauthorized, match="has no MODIFY permission"):
            s.execute(f"INSERT INTO {KEYSPACE}.items (id, note) VALUES (-1, 'by reader')")
    finally:
        cluster.shutdown()
    with pytest.raises(NoHostAvailable, match=r"[Pp]rovided username .* and/or password are incorrect"):
        session(ring.rw, READER, "not-the-password")


def test_the_agents_serve_the_node_logs_and_their_slow_reads(local_cluster: LocalCluster, ring: Ring) -> None:
    """The image's logback.xml fills ``system_views.system_logs``: GET /v1/logs/error has the node's own
    records, GET /v1/logs/slow the reads MonitoringTask found slower than the spec's 10 ms (on the node
    that ran them: whichever the rw Service routed the session to, so every agent is asked)."""
    pods = pods_of(local_cluster, ring.namespace, NAME)
    marker = f"kt-slow-{uuid.uuid4().hex[:8]}"
    # A table of 3000 rows, which a filtering scan takes ~18 ms to read on an idle host (200 rows were not
    # always over 10 ms). The admin user makes it (app may not CREATE), app fills and reads it.
    owner, owner_session = session(ring.rw, OWNER, OWNER_PASSWORD)
    try:
        owner_session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.scanned (id int PRIMARY KEY, note text)", timeout=60
        )
    finally:
        owner.shutdown()
    cluster, s = session(ring.rw)
    insert = s.prepare(f"INSERT INTO {KEYSPACE}.scanned (id, note) VALUES (?, ?)")
    execute_concurrent_with_args(s, insert, [(i, f"row {i}") for i in range(3000)], concurrency=50)
    read = f"SELECT id FROM {KEYSPACE}.scanned WHERE note = '{marker}' ALLOW FILTERING"

    def reported() -> Any:
        s.execute(read, timeout=60)  # again each poll: MonitoringTask reports what it saw every 5 s
        for pod in pods:
            slow, errors = agent_logs(local_cluster.api, ring.namespace, NAME, pod)
            if any(marker in e.query for e in slow.entries):
                return slow, errors
        time.sleep(2)
        return None

    try:
        slow, errors = wait_until(reported, f"the read {read!r} in an agent's GET /v1/logs/slow", 240)
    finally:
        cluster.shutdown()
    entry = next(e for e in slow.entries if marker in e.query)
    assert entry.database == KEYSPACE and entry.duration_seconds >= 0.01, entry
    assert any(e.message.startswith("[StorageService] ") for e in errors.entries), errors.entries[-5:]
    assert {e.level for e in errors.entries} <= {"INFO", "WARN", "ERROR"}


def _backup_object(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(  # type: ignore[no-any-return]
        GROUP, VERSION, namespace, BACKUP.plural, name
    )


def test_a_backup_of_the_ring_snapshots_every_node(local_cluster: LocalCluster, ring: Ring) -> None:
    ns = ring.namespace
    apply_cr(local_cluster, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DatabaseBackup",
        "metadata": {"name": "full", "namespace": ns},
        "spec": {"source": {"kind": "DatabaseCluster", "name": NAME}},
    })  # fmt: skip

    def completed() -> dict[str, Any] | None:
        status = _backup_object(local_cluster, ns, "full").get("status") or {}
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Completed" else None

    try:
        backup = wait_until(completed, "DatabaseBackup full Completed", 600)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(local_cluster, ns, NAME)}") from None
    uid = _backup_object(local_cluster, ns, "full")["metadata"]["uid"]
    members = {m["pod"]: m for m in status_of(local_cluster, "DatabaseCluster", ns, NAME)["members"]}
    nodes = backup["nodes"]
    assert [(n["pod"], n["id"]) for n in nodes] == [(p, f"{uid}-{i}") for i, p in enumerate(sorted(members))]
    for node in nodes:
        member = members[node["pod"]]
        assert (node["hostId"], node["address"], node["tokens"]) == (member["hostId"], member["address"], 16)
    assert backup["engine"] == "cassandra" and backup["sizeBytes"] == sum(n["sizeBytes"] for n in nodes) > 0
    # What step 6 restores each new node's tokens from: the source nodes' own, as of now.
    ring.facts["tokens"] = {
        p.metadata.name: tokens_of(p.status.pod_ip) for p in pods_of(local_cluster, ns, NAME)
    }
    ring.facts["backup"] = [n["id"] for n in nodes]


def test_spec_backup_verify_restores_the_ring_backup_into_a_throwaway_ring(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    verify_ring_backup(local_cluster, ring)


def test_a_minor_upgrade_and_a_restart_parameter_roll_the_ring_one_node_at_a_time(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    roll_one_at_a_time(local_cluster, ring)


def test_a_scale_down_below_a_keyspaces_factor_is_refused_and_changes_nothing(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    refused_scale_down(local_cluster, ring)


def test_the_refused_scale_down_goes_through_once_the_keyspace_is_lowered(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    shrinks_once_lowered_then_grows_back(local_cluster, ring)


def test_a_node_crashed_under_quorum_writes_loses_no_acknowledged_write(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    crash_under_quorum_writes(local_cluster, ring)


def test_the_seed_whose_volume_is_lost_is_replaced_with_its_tokens(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    replace_lost_volume(local_cluster, ring)


def test_the_ring_scales_to_four_nodes_and_back(local_cluster: LocalCluster, ring: Ring) -> None:
    scale_out_and_back(local_cluster, ring)


def test_the_ring_backup_restores_into_a_new_ring_of_three_and_verifies(
    local_cluster: LocalCluster, ring: Ring
) -> None:
    """``restoreFrom`` the backup of step 4: member i's init container (the agent image) puts node i's
    snapshot and tokens on its volume, so each new node owns its source node's ranges and every row is
    there at ALL; then ``POST /v1/verify`` on a restored member (what a verification asks the restored
    node): the ring-wide row counts recorded at backup time equal the restored ring's, and
    ``nodetool verify --force`` finds every table of that node sound."""
    ns, copy = ring.namespace, "copy"
    body = real_resource("DatabaseCluster", copy, ns, "cassandra", "5.0", KEYSPACE)
    body["spec"] |= {
        "replicas": NODES,
        "databases": [{"name": KEYSPACE, "replicationFactor": NODES}],
        "resources": ring.body["spec"]["resources"],
        "restoreFrom": {"backup": "full"},
        "parameters": {"ring_delay": RING_DELAY_MS},
    }
    apply_cr(local_cluster, body)
    started = time.monotonic()
    core = client.CoreV1Api(local_cluster.api)
    names = ChildNames(copy)

    def request() -> RestoreRequest | None:
        try:
            secret = core.read_namespaced_secret(names.restore_secret, ns)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return RestoreRequest.model_validate_json(base64.b64decode(secret.data[RESTORE_REQUEST_KEY]))

    restore = wait_until(request, "the restore request Secret", 120)
    assert restore.member_backups == ring.facts["backup"]
    try:
        wait_until(
            lambda: ring_ready(status_of(local_cluster, "DatabaseCluster", ns, copy)),
            "the restored ring Ready with 3 nodes UN",
            READY,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(local_cluster, ns, copy)}") from None
    print(f"cassandra: the restored ring Ready in {time.monotonic() - started:.0f}s")
    copies = pods_of(local_cluster, ns, copy)
    for i, pod in enumerate(copies):
        assert tokens_of(pod.status.pod_ip) == ring.facts["tokens"][f"{NAME}-{i}"], i
    rows = rows_at(service_ip(local_cluster, ns, names.rw_service), f"SELECT id, note FROM {KEYSPACE}.items",
                   ConsistencyLevel.ALL)  # fmt: skip
    assert sorted((r.id, r.note) for r in rows) == [(i, f"row {i} through rw") for i in range(ROWS)]

    async def verify() -> VerifyReply:
        async with operator_like_client(local_cluster.api, LEASE_NAMESPACE, ns, copy, copies[0]) as agent:
            return await agent.verify(
                VerifyRequest(backup_id=restore.member_backups[0], source=restore.source)
            )

    checked = time.monotonic()
    reply = asyncio.run(verify())
    print(f"cassandra: POST /v1/verify on {copies[0].metadata.name} in {time.monotonic() - checked:.0f}s")
    assert reply.check_tool == "nodetool verify"
    assert reply.recorded == reply.observed, (reply.recorded, reply.observed)
    assert reply.recorded[f"{KEYSPACE}.items"].rows == ROWS
    mine = [(c.table, c.ok) for c in reply.checks if c.table.startswith(f"{KEYSPACE}.")]
    assert mine and all(ok for _, ok in mine), reply.checks
    assert settled(status_of(local_cluster, "DatabaseCluster", ns, copy))
