"""MongoDB on real pods: a 3-member replica set of the locally built ``mongo:6.0.5`` image (MongoDB's own
mongod 6.0.5 build, hack/images/recipes.py) with the fallback agent image, on the real node.

One DatabaseCluster serves the whole file (module-scoped; the tests run in file order and each leaves
it settled): it reaches Ready with the set initiated by the membership loop and a primary elected by
the set; a host client writes through the read-write Service (ClusterIP, kube-proxy), which selects the
pod the loop labelled primary, and reads the row back through the read-only Service (a secondary); the
server itself refuses a write to a ``read`` user; a physical backup (a secondary's data files under
``fsyncLock``) goes to a real MinIO and a new DatabaseInstance restored from it holds exactly the
documents, while ``backup.verify`` restores it once more into a throwaway and checks it (counts, dbHash,
validate); then the primary's pod is deleted under ``w: "majority"`` writes and every acknowledged write
is still there, and a switchover by ``spec.primary`` moves the primary and the rw Service with it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from kubetrove.api.resources import BACKUP
from kubetrove.reconcile.backup.verify_plan import throwaway_name
from kubetrove.render.names import ChildNames
from tests.integration.servers.minio import MinioServer

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import GROUP, VERSION, Operator, apply_cr, get_cr
from .conftest import (
    APP_PASSWORD,
    APP_USER,
    app_secret,
    namespace_gone,
    real_namespace_named,
    real_resource,
    s3_storage,
    settled,
)

NAME, DATABASE, S3_SECRET = "mg", "orders", "backup-s3"
READER, READER_PASSWORD, READER_SECRET = "reader", "reader-Secret-42", "reader-password"
PORT = 27017
READY = 480  # seconds: three image starts, the set's initiation and first election, users (2 shared cores)
DOCS = 300


def _status(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, kind, namespace, name) or {}).get("status")) or {}


def _with_primary(status: dict[str, Any]) -> bool:
    return settled(status) and bool(status.get("primary"))


def _client(host: str, user: str = APP_USER, password: str = APP_PASSWORD, **kw: Any) -> MongoClient[Any]:
    """A direct connection to one address (a Service's ClusterIP): no replica-set discovery, so what
    answers is whatever pod the Service routes to."""
    return MongoClient(host, PORT, username=user, password=password, authSource="admin",
                       directConnection=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000,
                       socketTimeoutMS=10000, **kw)  # fmt: skip


def _service_ip(cluster: LocalCluster, namespace: str, service: str) -> str:
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(service, namespace).spec.cluster_ip)


def _report(cluster: LocalCluster, namespace: str, instance: str = NAME) -> str:
    """The resource's status and, per pod, container states and the last lines of each log."""
    core = client.CoreV1Api(cluster.api)
    kind = "DatabaseCluster" if instance == NAME else "DatabaseInstance"
    lines = [f"status of {instance}: {_status(cluster, kind, namespace, instance)}"]
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={instance}")
    for pod in pods.items:
        lines.append(f"{pod.metadata.name} labels={pod.metadata.labels}")
        st = pod.status
        for c in (st.init_container_statuses or []) + (st.container_statuses or []):
            lines.append(f"{pod.metadata.name}/{c.name}: state={c.state} restarts={c.restart_count}")
            try:
                log = core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container=c.name, tail_lines=20
                )
            except client.ApiException as exc:
                log = f"(no log: {exc.reason})"
            lines.append(log)
    return "\n".join(lines)


@dataclass
class MongoCluster:
    namespace: str
    body: dict[str, Any]
    rw: str  # ClusterIPs
    ro: str


def _spec(namespace: str, minio: MinioServer, cluster: LocalCluster) -> dict[str, Any]:
    body = real_resource("DatabaseCluster", NAME, namespace, "mongodb", "6.0", DATABASE)
    spec = body["spec"]
    spec["replicas"] = 3
    spec["users"].append(
        {"name": READER, "passwordSecretRef": {"name": READER_SECRET, "key": "password"},
         "grants": [{"database": DATABASE, "privileges": ["read"]}]}
    )  # fmt: skip
    # Three mongods on two shared cores: WiredTiger's cache floor and no FTDC sampling (catalog
    # parameters a user may set the same way).
    spec["parameters"] = {
        "storage.wiredTiger.engineConfig.cacheSizeGB": "0.25",
        "setParameter.diagnosticDataCollectionEnabled": "false",
    }
    storage = s3_storage(cluster.api, namespace, minio, S3_SECRET)
    spec["backup"] = {"storage": storage, "verify": True}
    return body


@pytest.fixture(scope="module")
def mongo(
    local_cluster: LocalCluster, operator: Operator, real_node: str, bridge_minio: MinioServer
) -> Iterator[MongoCluster]:
    """A settled 3-member MongoDB DatabaseCluster on the real node, with the app and reader users."""
    with real_namespace_named(local_cluster.api, f"real-mongo-{uuid.uuid4().hex[:6]}") as ns:
        app_secret(local_cluster.api, ns)
        meta = client.V1ObjectMeta(name=READER_SECRET)
        client.CoreV1Api(local_cluster.api).create_namespaced_secret(
            ns, client.V1Secret(metadata=meta, string_data={"password": READER_PASSWORD})
        )
        body = _spec(ns, bridge_minio, local_cluster)
        apply_cr(local_cluster, body)
        started = time.monotonic()
        try:
            wait_until(
                lambda: _with_primary(_status(local_cluster, "DatabaseCluster", ns, NAME)),
                "the cluster Ready with a primary and its users",
                READY,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
        print(f"mongodb: 3 members Ready in {time.monotonic() - started:.0f}s")
        names = ChildNames(NAME)
        yield MongoCluster(
            ns,
            body,
            _service_ip(local_cluster, ns, names.rw_service),
            _service_ip(local_cluster, ns, names.ro_service),
        )
    # Wait for the namespace to go while the real node still runs: when this file runs last, the session
    # stops the node right after this fixture, and a pod kubelet never confirmed deleted would keep the
    # namespace (and the resources the operator must finalize) Terminating for good.
    wait_until(lambda: namespace_gone(local_cluster, ns), f"namespace {ns} deleted", 300)


def _rw_writable(host: str) -> bool:
    """The member behind ``host`` is the writable primary (retried while the Service has no endpoint)."""
    try:
        with _client(host) as c:
            return bool(c.admin.command("hello").get("isWritablePrimary"))
    except PyMongoError:
        return False


def _rw_is(host: str, pod: str) -> bool:
    """The writable primary behind ``host`` is ``pod`` (its ``hello.me`` is the pod's member host)."""
    try:
        with _client(host) as c:
            hello = c.admin.command("hello")
    except PyMongoError:
        return False
    return bool(hello.get("isWritablePrimary")) and str(hello.get("me", "")).startswith(f"{pod}.")


def test_replica_set_on_pods_serves_the_rw_and_ro_services(
    local_cluster: LocalCluster, mongo: MongoCluster
) -> None:
    status = _status(local_cluster, "DatabaseCluster", mongo.namespace, NAME)
    primary = status["primary"]
    core = client.CoreV1Api(local_cluster.api)
    pods = core.list_namespaced_pod(
        mongo.namespace, label_selector=f"app.kubernetes.io/instance={NAME}"
    ).items
    assert sorted(p.spec.node_name for p in pods) == [pods[0].spec.node_name] * 3
    roles = {p.metadata.name: p.metadata.labels.get("kubetrove.io/role") for p in pods}
    assert roles == {p: "primary" if p == primary else "replica" for p in roles}, roles

    # rw reaches the member the set elected (its own hello says so), and takes a majority write.
    wait_until(lambda: _rw_writable(mongo.rw), "the rw Service to reach the primary", 60)
    with _client(mongo.rw) as c:
        hello = c.admin.command("hello")
        assert hello["setName"] == "rs0" and len(hello["hosts"]) == 3, hello
        assert hello["me"].startswith(f"{primary}."), (hello["me"], primary)
        orders = c[DATABASE].get_collection("items", write_concern=WriteConcern("majority", wtimeout=30000))
        orders.insert_one({"_id": "first", "note": "through rw"})

    # ro reaches a secondary, which has the row by replication.
    def on_secondary() -> bool:
        try:
            with _client(mongo.ro) as c:
                if c.admin.command("hello").get("secondary") is not True:
                    return False
                return c[DATABASE].items.find_one({"_id": "first"}) is not None
        except PyMongoError:
            return False

    wait_until(on_secondary, "the row read on a secondary through the ro Service", 60)


def test_the_server_refuses_a_write_to_a_read_user(local_cluster: LocalCluster, mongo: MongoCluster) -> None:
    wait_until(lambda: _rw_writable(mongo.rw), "the rw Service to reach the primary", 60)
    with _client(mongo.rw, READER, READER_PASSWORD) as c:
        assert c[DATABASE].items.find_one({"_id": "first"}) is not None  # read: granted
        with pytest.raises(OperationFailure) as refused:
            c[DATABASE].items.insert_one({"_id": "by-reader"})
        assert refused.value.code == 13, refused.value.details  # Unauthorized, from mongod itself
        with pytest.raises(OperationFailure) as elsewhere:
            c.other.items.find_one()
        assert elsewhere.value.code == 13  # no grant on another database
    with _client(mongo.rw) as c:
        assert c[DATABASE].items.find_one({"_id": "by-reader"}) is None
        c[DATABASE].items.insert_one({"_id": "by-app"})  # readWrite: granted


def _backup_status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(cluster.api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP.plural, name
    )
    return obj.get("status") or {}


def test_physical_backup_restores_into_a_new_instance_and_verifies(
    local_cluster: LocalCluster, mongo: MongoCluster
) -> None:
    ns = mongo.namespace
    docs = [{"_id": i, "name": f"item-{i}-ünï", "price": i / 4, "tags": ["a", str(i)]} for i in range(DOCS)]
    with _client(mongo.rw) as c:
        c[DATABASE].get_collection("stock", write_concern=WriteConcern("majority")).insert_many(docs)
    apply_cr(local_cluster, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DatabaseBackup",
        "metadata": {"name": "full", "namespace": ns},
        "spec": {"source": {"kind": "DatabaseCluster", "name": NAME}, "method": "physical"},
    })  # fmt: skip

    def completed() -> dict[str, Any] | None:
        status = _backup_status(local_cluster, ns, "full")
        assert status.get("phase") != "Failed", status
        return status if status.get("phase") == "Completed" else None

    backup = wait_until(completed, "DatabaseBackup full Completed", 300)
    assert backup["sizeBytes"] > 0 and backup["sha256"], backup

    # A new instance restored from it (its init container places the files before mongod starts).
    body = real_resource("DatabaseInstance", "restored", ns, "mongodb", "6.0", DATABASE)
    body["spec"]["restoreFrom"] = {"backup": "full"}
    body["spec"]["parameters"] = dict(mongo.body["spec"]["parameters"])
    apply_cr(local_cluster, body)
    try:
        wait_until(
            lambda: settled(_status(local_cluster, "DatabaseInstance", ns, "restored")), "restored Ready", 360
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns, 'restored')}") from None
    host = _service_ip(local_cluster, ns, ChildNames("restored").rw_service)

    def restored_docs() -> list[dict[str, Any]] | None:
        try:
            with _client(host) as c:
                return list(c[DATABASE].stock.find().sort("_id"))
        except PyMongoError:
            return None

    assert wait_until(restored_docs, "the restored documents through the instance's rw Service", 60) == docs

    # backup.verify: the operator restores the same backup into a throwaway and checks it.
    def verified() -> dict[str, Any] | None:
        v = _backup_status(local_cluster, ns, "full").get("verification") or {}
        return v if v.get("phase") in ("Verified", "Failed") else None

    verification = wait_until(verified, "the backup's verification", 600)
    assert verification["phase"] == "Verified", verification
    assert verification["instance"] == throwaway_name("full"), verification
    print(f"mongodb verification: {verification['message']}")


class Writer(threading.Thread):
    """Inserts numbered documents with ``w: "majority"`` through the rw Service; records each id the
    server acknowledged and the longest time between two acknowledgements (the write gap)."""

    def __init__(self, host: str) -> None:
        super().__init__(daemon=True)
        self.host, self.stop, self.errors, self.gap = host, threading.Event(), 0, 0.0
        self.acked: list[int] = []

    def run(self) -> None:
        c: MongoClient[Any] | None = None
        last, n = time.monotonic(), 0
        while not self.stop.is_set():
            try:
                c = c or _client(self.host)
                wc = WriteConcern("majority", wtimeout=20000)
                c[DATABASE].get_collection("acked", write_concern=wc).insert_one({"_id": n})
                self.acked.append(n)  # only after the server acknowledged the majority write
                now = time.monotonic()
                self.gap, last = max(self.gap, now - last), now
                time.sleep(0.02)
            except PyMongoError:
                self.errors += 1
                if c is not None:
                    c.close()
                c = None  # a new connection: through the Service, to whichever pod it now selects
                time.sleep(0.2)
            n += 1  # an unacknowledged id is never retried: it may or may not exist


def test_primary_pod_deletion_and_switchover_keep_every_acknowledged_write(
    local_cluster: LocalCluster, mongo: MongoCluster
) -> None:
    ns, core = mongo.namespace, client.CoreV1Api(local_cluster.api)
    wait_until(lambda: _rw_writable(mongo.rw), "the rw Service to reach the primary", 60)
    old = _status(local_cluster, "DatabaseCluster", ns, NAME)["primary"]
    writer = Writer(mongo.rw)
    writer.start()
    wait_until(lambda: len(writer.acked) >= 50, "50 acknowledged writes before the failure")
    core.delete_namespaced_pod(old, ns)
    before = len(writer.acked)
    try:
        wait_until(lambda: len(writer.acked) >= before + 50, "50 writes through rw after the deletion", 180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
    failover_gap, writer.gap = writer.gap, 0.0
    # The deleted member is back as a secondary; then a switchover to another secondary.
    wait_until(
        lambda: _with_primary(_status(local_cluster, "DatabaseCluster", ns, NAME)), "the set settled", 240
    )
    new = _status(local_cluster, "DatabaseCluster", ns, NAME)["primary"]
    target = next(f"{NAME}-{i}" for i in range(3) if f"{NAME}-{i}" != new)
    mongo.body["spec"]["primary"] = target
    apply_cr(local_cluster, mongo.body)
    before = len(writer.acked)
    try:
        wait_until(
            lambda: _status(local_cluster, "DatabaseCluster", ns, NAME).get("primary") == target,
            f"switchover to {target}",
            120,
        )
        wait_until(lambda: len(writer.acked) >= before + 50, "50 writes through rw after the switchover", 120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None
    writer.stop.set()
    writer.join(timeout=30)
    # Under writes the voters may refuse the step-up; the term it raised still makes the primary step
    # down, and the ordinary election that follows may land elsewhere first (docs/clustering.md, M1).
    # The loop asks the target again while spec.primary names it: the set ends on it, and rw with it.
    try:
        wait_until(lambda: _rw_is(mongo.rw, target), f"the rw Service on {target}", 120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_report(local_cluster, ns)}") from None

    with _client(mongo.rw) as c:
        present = {d["_id"] for d in c[DATABASE].acked.find({}, {"_id": 1})}
    lost = sorted(set(writer.acked) - present)
    assert not lost, f"acknowledged writes missing ({old} -> {new} -> {target}): {lost[:20]} (of {len(lost)})"
    print(f"mongodb failover {old} -> {new} (write gap {failover_gap:.1f}s), switchover -> {target} "
          f"(write gap {writer.gap:.1f}s): "
          f"{len(writer.acked)} acknowledged, 0 lost, {writer.errors} client errors")  # fmt: skip
