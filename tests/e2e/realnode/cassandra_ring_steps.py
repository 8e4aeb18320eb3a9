"""The ring of three of test_cassandra_pods.py and its lifecycle steps on real pods: a rolling restart, a
refused scale-down, a node crashed under QUORUM writes, a node replaced after its volume is lost, a
scale to four nodes and back.

Each step starts and ends with the ring 3x UN (the next one builds on it) and checks what the operator
and Cassandra did from outside: ``status.members`` and conditions, the pods, the engine ConfigMap, and
what the nodes say (CQL at their pod IPs, nodetool run inside a pod's namespaces from the host).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from cassandra import ConsistencyLevel
from kubernetes import client

from kubetrove.k8s.secrets import decode_secret
from kubetrove.render.names import ChildNames
from tests.integration.ring_harness import QuorumWriter
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import GROUP, VERSION, apply_cr
from .cassandra_pods import (
    Coordinators,
    StateWatch,
    condition,
    jvm_pid,
    nodetool,
    pods_of,
    report,
    ring_states,
    rows_at,
    service_ip,
    session,
    status_of,
)
from .conftest import app_secret, namespace_gone, real_namespace_named, real_resource, s3_storage, settled

NAME, KEYSPACE, S3_SECRET = "cs", "orders", "backup-s3"
READER, READER_PASSWORD, READER_SECRET = "reader", "reader-Secret-42", "reader-password"
OWNER, OWNER_PASSWORD, OWNER_SECRET = "owner", "owner-Secret-42", "owner-password"
SUPERUSER, SUPERUSER_KEY = "cassandra", "superuser-password"  # datastores/cassandra/strategy.py
NODES = 3
ROWS = 200
ALL_UN = dict.fromkeys((f"{NAME}-{i}" for i in range(NODES)), "UN")
# A node's JVM start on 2 shared cores (no join), or a replacement's join (30 s ring delay + streaming).
RESTART, REPLACE = 420, 600
# The ring starts on the catalog's pinned previous patch release and is upgraded in place to the 5.0
# line's current one by the rolling step (a minor upgrade): the image tags hack/images builds.
FIRST_VERSION, UPGRADED_VERSION = "5.0.8", "5.0"
FIRST_RELEASE, UPGRADED_RELEASE = "5.0.8", "5.0.9"
RING_DELAY_MS = "5000"  # spec.parameters.ring_delay (the host test rings' value)
HOLD = "kubetrove.io/e2e-hold"  # the test's finalizer on a PVC it deletes (see replace_lost_volume)


@dataclass
class Ring:
    namespace: str
    body: dict[str, Any]
    rw: str  # ClusterIPs
    ro: str
    superuser_password: str
    facts: dict[str, Any] = field(default_factory=dict)  # what a step leaves for a later one


def _spec(namespace: str, minio: MinioServer, cluster: LocalCluster) -> dict[str, Any]:
    body = real_resource("DatabaseCluster", NAME, namespace, "cassandra", FIRST_VERSION, KEYSPACE)
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
    # slow_query_log_timeout: ms, reads the agent then reports as slow. ring_delay: a joining, leaving or
    # replacing node sleeps it twice; Cassandra's 30 s default would cost ~5 minutes in this module.
    spec["parameters"] = {"slow_query_log_timeout": "10", "ring_delay": RING_DELAY_MS}
    return body


def ring_ready(status: dict[str, Any]) -> bool:
    members = status.get("members") or []
    return settled(status) and len(members) == NODES and all(m.get("ringState") == "UN" for m in members)


@contextmanager
def start_ring(cluster: LocalCluster, minio: MinioServer, namespace: str, ready: float) -> Iterator[Ring]:
    """The ring of three in a new namespace of the real node, settled; the namespace deleted after."""
    with real_namespace_named(cluster.api, namespace) as ns:
        core = client.CoreV1Api(cluster.api)
        app_secret(cluster.api, ns)
        for secret, password in ((READER_SECRET, READER_PASSWORD), (OWNER_SECRET, OWNER_PASSWORD)):
            meta = client.V1ObjectMeta(name=secret)
            core.create_namespaced_secret(
                ns, client.V1Secret(metadata=meta, string_data={"password": password})
            )
        body = _spec(ns, minio, cluster)
        apply_cr(cluster, body)
        started = time.monotonic()
        try:
            wait_until(
                lambda: ring_ready(status_of(cluster, "DatabaseCluster", ns, NAME)),
                "the ring Ready: 3 nodes UN, users and keyspace applied",
                ready,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{report(cluster, ns, NAME)}") from None
        print(f"cassandra: {NODES} nodes UN and Ready in {time.monotonic() - started:.0f}s")
        names = ChildNames(NAME)
        credentials = decode_secret(cluster.api.sanitize_for_serialization(
            core.read_namespaced_secret(names.credentials_secret, ns)
        ))  # fmt: skip
        yield Ring(
            ns,
            body,
            service_ip(cluster, ns, names.rw_service),
            service_ip(cluster, ns, names.ro_service),
            credentials[SUPERUSER_KEY],
        )
    wait_until(lambda: namespace_gone(cluster, ns), f"namespace {ns} deleted", 300)


def tokens_of(ip: str) -> list[str]:
    """The tokens the node at ``ip`` owns (system.local), sorted as numbers."""
    (row,) = rows_at(ip, "SELECT tokens FROM system.local", ConsistencyLevel.ONE)
    return sorted(row.tokens, key=int)


def members_by_pod(cluster: LocalCluster, ring: Ring) -> dict[str, dict[str, Any]]:
    return {m["pod"]: m for m in status_of(cluster, "DatabaseCluster", ring.namespace, NAME)["members"]}


def pods_by_name(cluster: LocalCluster, ring: Ring) -> dict[str, Any]:
    return {p.metadata.name: p for p in pods_of(cluster, ring.namespace, NAME)}


def _wait_states(cluster: LocalCluster, ring: Ring, want: dict[str, str], what: str, timeout: float) -> None:
    def reached() -> bool:
        return ring_states(status_of(cluster, "DatabaseCluster", ring.namespace, NAME)) == want

    try:
        wait_until(reached, what, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(cluster, ring.namespace, NAME)}") from None


def steady(cluster: LocalCluster, ring: Ring) -> None:
    """Wait until the ring is Ready and 3x UN (what every lifecycle step starts from)."""
    _wait_states(cluster, ring, ALL_UN, "the ring 3x UN before the step", RESTART)
    wait_until(
        lambda: ring_ready(status_of(cluster, "DatabaseCluster", ring.namespace, NAME)), "the ring Ready", 120
    )


def _owner_ddl(ring: Ring, statement: str) -> None:
    cluster, s = session(ring.rw, OWNER, OWNER_PASSWORD)
    try:
        s.execute(statement, timeout=60)
    finally:
        cluster.shutdown()


def _crash(cluster: LocalCluster, ring: Ring, pod: Any) -> None:
    """SIGKILL the pod's Cassandra JVM from the host (root; the real node's containers are host processes),
    then delete the pod: the node is gone with no drain and nothing announced to the ring. The replacement
    step holds the new pod back (its PVC) so the node stays down."""
    pid = jvm_pid(pod.metadata.uid)
    assert pid is not None, f"no Cassandra JVM in {pod.metadata.name}"
    os.kill(pid, signal.SIGKILL)
    client.CoreV1Api(cluster.api).delete_namespaced_pod(pod.metadata.name, ring.namespace)


def _engine_restarts(pod: Any) -> int:
    return next((c.restart_count for c in pod.status.container_statuses or [] if c.name == "engine"), 0)


def crash_under_quorum_writes(cluster: LocalCluster, ring: Ring) -> None:
    """Node 1 of three crashes while a client writes at QUORUM with RF 3 (through nodes 0 and 2, which
    stay up): every write the ring acknowledged is there at ALL afterwards; ``status.members`` shows the
    node DN, the Replication condition Degraded naming it, then UN once the kubelet has restarted its JVM
    on the same volume; the other nodes replay the hints they kept for it."""
    steady(cluster, ring)
    ns, victim = ring.namespace, f"{NAME}-1"
    _owner_ddl(ring, f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.faults (id int PRIMARY KEY, at double)")
    pods = pods_by_name(cluster, ring)
    host_id = members_by_pod(cluster, ring)[victim]["hostId"]
    coordinators = (f"{NAME}-0", f"{NAME}-2")
    writer = QuorumWriter(Coordinators([pods[p].status.pod_ip for p in coordinators]), f"{KEYSPACE}.faults")
    writer.start()
    pid: int | None = None
    try:
        wait_until(lambda: len(writer.acked) >= 200, "200 acknowledged QUORUM writes", 120)
        # Frozen first (SIGSTOP): its peers convict it (~10-20 s) and the status shows it DN for as long as
        # the test needs. Seen on pods: a SIGKILL alone (and its pod deleted) came back on a new pod within
        # seconds, before the loop ever showed it DN. The SIGKILL below is the crash: no drain, the commit
        # log replayed when the kubelet restarts the container on the same volume.
        pid = jvm_pid(pods[victim].metadata.uid)
        assert pid is not None, f"no Cassandra JVM in {victim}"
        restarts = _engine_restarts(pods[victim])
        os.kill(pid, signal.SIGSTOP)
        crashed = time.monotonic()
        _wait_states(cluster, ring, {**ALL_UN, victim: "DN"}, f"{victim} DN, the others UN", 120)
        print(f"cassandra: {victim} DN in status.members {time.monotonic() - crashed:.0f}s after the crash")
        replication = condition(status_of(cluster, "DatabaseCluster", ns, NAME), "Replication")
        assert replication.get("status") == "False" and f"{victim} is DN" in replication.get("message", ""), (
            replication
        )
        during = len(writer.acked)
        wait_until(lambda: writer.since(during) >= 100, "100 more QUORUM writes with a node down", 120)

        def kept() -> bool:  # the coordinators keep hints for the writes it misses (flushed every 10 s)
            if any(host_id in nodetool(pods[p].metadata.uid, "listpendinghints") for p in coordinators):
                return True
            time.sleep(3)
            return False

        wait_until(kept, f"hints pending for {victim} while it is down", 90)
        os.kill(pid, signal.SIGKILL)
        pid = None
        _wait_states(cluster, ring, ALL_UN, f"{victim} UN again", RESTART)
        print(f"cassandra: {victim} UN again {time.monotonic() - crashed:.0f}s after the crash")
    finally:
        if pid is not None:  # never leave it frozen: killed, the kubelet restarts it
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        writer.stop()
    print(f"cassandra: {len(writer.acked)} QUORUM writes acknowledged, {writer.failed} not")
    back = pods_by_name(cluster, ring)
    assert back[victim].metadata.uid == pods[victim].metadata.uid  # the same pod, its container restarted
    assert _engine_restarts(back[victim]) > restarts
    assert members_by_pod(cluster, ring)[victim]["hostId"] == host_id  # the same node, on its own volume

    # The writes it missed reach it as hints: no node keeps any for it once it is back.
    for via in coordinators:

        def replayed(via: str = via) -> bool:
            if host_id not in nodetool(back[via].metadata.uid, "listpendinghints"):
                return True
            time.sleep(3)
            return False

        wait_until(replayed, f"no hints pending for {victim} on {via}", 180)
    stored = {r.id for r in rows_at(ring.rw, f"SELECT id FROM {KEYSPACE}.faults", ConsistencyLevel.ALL)}
    lost = set(writer.acked) - stored
    assert not lost, f"lost {len(lost)} acknowledged writes: {sorted(lost)[:20]}"
    ring.facts["acked"] = set(writer.acked)
    wait_until(
        lambda: (
            condition(status_of(cluster, "DatabaseCluster", ns, NAME), "Replication").get("status") == "True"
        ),
        "Replication Healthy again",
        120,
    )


def _replace_key(cluster: LocalCluster, ring: Ring, pod: str) -> str | None:
    cm = client.CoreV1Api(cluster.api).read_namespaced_config_map(ChildNames(NAME).config_map, ring.namespace)
    return (cm.data or {}).get(f"replace-address.{pod}")


def replace_lost_volume(cluster: LocalCluster, ring: Ring) -> None:
    """Node 0, the seed, crashes and its volume is lost (its PVC and pod deleted). The operator names the
    dead node's address in the engine ConfigMap (``replace-address.cs-0``); the new pod, on a new volume
    and a new IP, starts with ``replace_address_first_boot`` and member 1 as its seed (a seed cannot
    bootstrap, so Cassandra would refuse the replacement otherwise) and takes over the dead node's 16
    tokens; the dead address leaves the ring, the key is withdrawn, Replication is Healthy and every row is
    there at ALL. A member other than the seed is replaced the same way without the seed change: the e2e
    ring test (tests/e2e/test_operator_ring.py) replaces ring-2 through the operator on real nodes.

    The new pod is held until the operator has written the key, as a machine that died keeps its node
    down for a while before its volume is given up: the test puts a finalizer of its own on the PVC,
    which keeps it (and so the new pod) from coming back, and lifts it once the key is there. Without the
    hold, a pod recreated within seconds of the node's death can start before the ring has convicted the
    node (docs/clustering.md, "Replacing a dead node")."""
    steady(cluster, ring)
    ns, victim, observer = ring.namespace, f"{NAME}-0", f"{NAME}-1"
    core = client.CoreV1Api(cluster.api)
    claim = ChildNames(NAME).data_claim(0)
    pods = pods_by_name(cluster, ring)
    old_ip = pods[victim].status.pod_ip
    old_tokens = tokens_of(old_ip)
    _hold(core, ns, claim)
    core.delete_namespaced_persistent_volume_claim(claim, ns)
    _crash(cluster, ring, pods[victim])
    lost = time.monotonic()
    try:
        assert (
            wait_until(lambda: _replace_key(cluster, ring, victim), f"replace-address.{victim}", 180)
            == old_ip
        )
        print(f"cassandra: replace-address.{victim} written {time.monotonic() - lost:.0f}s after the crash")
    finally:
        _release(core, ns, claim)
    wait_until(lambda: claim_gone(core, ns, claim), f"PVC {claim} gone", 120)

    def replaced() -> bool:
        states = ring_states(status_of(cluster, "DatabaseCluster", ns, NAME))
        member = members_by_pod(cluster, ring)[victim]
        return (
            states == ALL_UN
            and member.get("address") not in (None, old_ip)
            and not _replace_key(cluster, ring, victim)
        )

    try:
        wait_until(replaced, f"{victim} UN on a new address, its replace key withdrawn", REPLACE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(cluster, ns, NAME)}") from None
    print(f"cassandra: {victim} replaced and UN {time.monotonic() - lost:.0f}s after the crash")
    now = pods_by_name(cluster, ring)
    new_ip = now[victim].status.pod_ip
    assert new_ip != old_ip and tokens_of(new_ip) == old_tokens
    # The dead address left the ring, as node 1 sees it (its peers table and nodetool status).
    peers = {
        str(r.peer)
        for r in rows_at(now[observer].status.pod_ip, "SELECT peer FROM system.peers", ConsistencyLevel.ONE)
    }
    assert peers == {now[f"{NAME}-2"].status.pod_ip, new_ip}, peers
    assert old_ip not in nodetool(now[observer].metadata.uid, "status")
    wait_until(
        lambda: (
            condition(status_of(cluster, "DatabaseCluster", ns, NAME), "Replication").get("status") == "True"
        ),
        "Replication Healthy with the replacement",
        120,
    )
    items = rows_at(ring.rw, f"SELECT id FROM {KEYSPACE}.items", ConsistencyLevel.ALL)
    assert sorted(r.id for r in items) == list(range(ROWS))
    faults = {r.id for r in rows_at(ring.rw, f"SELECT id FROM {KEYSPACE}.faults", ConsistencyLevel.ALL)}
    assert ring.facts.get("acked", set()) <= faults


def _hold(core: client.CoreV1Api, ns: str, claim: str) -> None:
    """Add the test's finalizer (a strategic merge patch: ``finalizers`` merges, pvc-protection stays)."""
    core.patch_namespaced_persistent_volume_claim(claim, ns, {"metadata": {"finalizers": [HOLD]}})
    assert HOLD in (core.read_namespaced_persistent_volume_claim(claim, ns).metadata.finalizers or [])


def _release(core: client.CoreV1Api, ns: str, claim: str) -> None:
    """Remove the test's finalizer only (a JSON patch testing its index: pvc-protection's own removal may
    race this one)."""
    for _ in range(10):
        try:
            finalizers = core.read_namespaced_persistent_volume_claim(claim, ns).metadata.finalizers or []
            if HOLD not in finalizers:
                return
            at = f"/metadata/finalizers/{finalizers.index(HOLD)}"
            core.patch_namespaced_persistent_volume_claim(
                claim, ns, [{"op": "test", "path": at, "value": HOLD}, {"op": "remove", "path": at}]
            )
            return
        except client.ApiException as exc:
            if exc.status == 404:
                return
            if exc.status not in (409, 422):  # 422: the test failed (the list changed under us)
                raise
    raise AssertionError(f"could not remove {HOLD} from PVC {claim}")


def claim_gone(core: client.CoreV1Api, ns: str, claim: str) -> bool:
    """True once the lost PVC is gone or replaced by a new one (the StatefulSet's, for the new pod)."""
    try:
        pvc = core.read_namespaced_persistent_volume_claim(claim, ns)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return pvc.metadata.deletion_timestamp is None


def patch_spec(cluster: LocalCluster, ring: Ring, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(cluster.api).patch_namespaced_custom_object(
        GROUP, VERSION, ring.namespace, "databaseclusters", NAME, {"spec": spec}
    )


def roll_one_at_a_time(cluster: LocalCluster, ring: Ring) -> None:
    """A minor upgrade (``spec.datastore.version`` 5.0.8 -> 5.0, i.e. Cassandra 5.0.9) together with a
    parameter Cassandra reads only at startup (``slow_query_log_timeout``): the StatefulSet replaces its
    pods one at a time (RollingUpdate: the next only once the last one is Ready, which its agent says once
    the node serves CQL, i.e. has joined). Polled every second while it rolls: never more than one member
    not UN in ``status.members``, never more than one pod not Ready; afterwards each node runs 5.0.9 with
    the new value, and ``status.version`` is the new one."""
    steady(cluster, ring)
    ns = ring.namespace
    assert _releases(cluster, ring) == dict.fromkeys(ALL_UN, FIRST_RELEASE)
    before = {n: p.metadata.uid for n, p in pods_by_name(cluster, ring).items()}
    watch = StateWatch(cluster, ns, NAME, NODES).start()
    started = time.monotonic()
    try:
        patch_spec(
            cluster,
            ring,
            {"datastore": {"version": UPGRADED_VERSION}, "parameters": {"slow_query_log_timeout": "20"}},
        )

        def rolled() -> bool:
            pods = pods_by_name(cluster, ring)
            return (
                sorted(pods) == sorted(before)
                and all(p.metadata.uid != before[n] for n, p in pods.items())
                and ring_ready(status_of(cluster, "DatabaseCluster", ns, NAME))
            )

        try:
            wait_until(rolled, "every pod replaced, the ring Ready and 3x UN", 900)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{watch.seen}\n{report(cluster, ns, NAME)}") from None
    finally:
        watch.stop()
    print(f"cassandra: the ring rolled in {time.monotonic() - started:.0f}s: " + "; ".join(watch.seen))
    assert watch.most_not_un <= 1 and watch.most_not_ready <= 1, watch.seen
    for name, pod in pods_by_name(cluster, ring).items():
        query = "SELECT value FROM system_views.settings WHERE name = 'slow_query_log_timeout'"
        (row,) = rows_at(pod.status.pod_ip, query, ConsistencyLevel.ONE, SUPERUSER, ring.superuser_password)
        assert row.value in ("20ms", "20"), (name, row.value)
    assert _releases(cluster, ring) == dict.fromkeys(ALL_UN, UPGRADED_RELEASE)
    assert status_of(cluster, "DatabaseCluster", ns, NAME).get("version") == UPGRADED_VERSION


def _releases(cluster: LocalCluster, ring: Ring) -> dict[str, str]:
    """pod -> the Cassandra release its node runs, as the node says over CQL (``system.local``)."""
    found: dict[str, str] = {}
    for name, pod in pods_by_name(cluster, ring).items():
        query = "SELECT release_version FROM system.local"
        (row,) = rows_at(pod.status.pod_ip, query, ConsistencyLevel.ONE, SUPERUSER, ring.superuser_password)
        found[name] = row.release_version
    return found
