"""Scaling the ring of test_cassandra_pods.py on real pods: a scale-down below a keyspace's replication
factor refused before anything changes (the spec still handled, and put back like any change); the same
scale-down going through by itself once that keyspace is lowered over CQL (the status refresh asks again),
then a node bootstrapped back; and a real scale to four nodes and back (a bootstrap, then a decommission
before the StatefulSet shrinks). Each step starts from the ring 3x UN and ends there
(cassandra_ring_steps.steady).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from cassandra import ConsistencyLevel
from kubernetes import client

from kubetrove.render.names import ChildNames

from ..conftest import LocalCluster, wait_until
from ..operator_support import get_cr
from .cassandra_pods import condition, nodetool, report, ring_states, rows_at, session, status_of
from .cassandra_ring_steps import (
    ALL_UN,
    KEYSPACE,
    NAME,
    NODES,
    REPLACE,
    ROWS,
    SUPERUSER,
    Ring,
    members_by_pod,
    patch_spec,
    pods_by_name,
    ring_ready,
    steady,
)
from .conftest import settled


def _factors(ring: Ring, *keyspaces: str) -> dict[str, str]:
    """keyspace -> its replication factor, as the ring's schema says (read by the superuser)."""
    rows = rows_at(ring.rw, "SELECT keyspace_name, replication FROM system_schema.keyspaces",
                   ConsistencyLevel.ONE, SUPERUSER, ring.superuser_password)  # fmt: skip
    return {
        r.keyspace_name: r.replication.get("replication_factor", "")
        for r in rows
        if r.keyspace_name in keyspaces
    }


def _events(cluster: LocalCluster, ring: Ring, kind: str, reason: str) -> list[str]:
    """The notes of the Events ``reason`` of type ``kind`` regarding the cluster (raw JSON: kopf's own
    Events have no eventTime, which the typed model requires)."""
    raw = client.EventsV1Api(cluster.api).list_namespaced_event(ring.namespace, _preload_content=False)
    return [
        e.get("note", "")
        for e in json.loads(raw.data)["items"]
        if (e.get("type"), e.get("reason"), (e.get("regarding") or {}).get("name")) == (kind, reason, NAME)
    ]


def _generations(cluster: LocalCluster, ring: Ring) -> tuple[int, int]:
    """(metadata.generation, status.observedGeneration) of the cluster."""
    body = get_cr(cluster.api, "DatabaseCluster", ring.namespace, NAME) or {}
    return body["metadata"]["generation"], (body.get("status") or {}).get("observedGeneration", 0)


def _superuser_cql(ring: Ring, statement: str) -> None:
    cql, s = session(ring.rw, SUPERUSER, ring.superuser_password)
    try:
        s.execute(statement, timeout=60)
    finally:
        cql.shutdown()


def _wait(cluster: LocalCluster, ring: Ring, check: Callable[[], Any], what: str, timeout: float) -> Any:
    try:
        return wait_until(check, what, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(cluster, ring.namespace, NAME)}") from None


def _refused(cluster: LocalCluster, ring: Ring) -> dict[str, Any]:
    """Ask for two nodes (the spec's keyspace lowered to 2 with them, as validation requires) while
    ``ledger`` needs three: the ScaleDown condition False ``Refused`` naming ledger and only ledger."""
    patch_spec(cluster, ring, {"replicas": 2, "databases": [{"name": KEYSPACE, "replicationFactor": 2}]})
    asked = time.monotonic()

    def refused() -> dict[str, Any] | None:
        scale_down = condition(status_of(cluster, "DatabaseCluster", ring.namespace, NAME), "ScaleDown")
        return scale_down if scale_down.get("status") == "False" else None

    scale_down: dict[str, Any] = _wait(cluster, ring, refused, "ScaleDown False", 240)
    print(f"cassandra: the scale-down refused {time.monotonic() - asked:.0f}s after the spec asked for it")
    assert scale_down["reason"] == "Refused", scale_down
    assert "ledger (replication factor 3)" in scale_down["message"], scale_down
    # Asked before anything changed: the ring's own keyspaces, lowered by the operator, are not named.
    assert "system_auth" not in scale_down["message"] and KEYSPACE not in scale_down["message"], scale_down
    return scale_down


def refused_scale_down(cluster: LocalCluster, ring: Ring) -> None:
    """A keyspace made over CQL (``ledger``, RF 3, by the superuser) needs all three nodes. ``replicas: 2``
    is refused BEFORE anything changes: ``ScaleDown`` False ``Refused`` naming ``ledger``, a
    ``ScaleDownRefused`` Warning Event; no node leaves (the StatefulSet keeps 3 replicas, the three nodes
    stay UN), ``ledger`` and ``system_auth`` keep RF 3, and the spec was handled (observedGeneration is
    the generation, the ring Ready: the refusal completes the pass). Putting ``spec.replicas`` back is a
    spec change like any other: ``ScaleDown`` True, the spec's keyspace at RF 3 again."""
    steady(cluster, ring)
    ns, names = ring.namespace, ChildNames(NAME)
    apps = client.AppsV1Api(cluster.api)
    _superuser_cql(ring, "CREATE KEYSPACE IF NOT EXISTS ledger WITH replication = "
                         "{'class': 'SimpleStrategy', 'replication_factor': 3}")  # fmt: skip
    scale_down = _refused(cluster, ring)
    notes = _wait(cluster, ring, lambda: _events(cluster, ring, "Warning", "ScaleDownRefused"),
                  "a ScaleDownRefused Warning Event", 60)  # fmt: skip
    assert any(n == scale_down["message"] for n in notes), (notes, scale_down)

    def handled() -> bool:
        generation, observed = _generations(cluster, ring)
        return generation == observed and settled(status_of(cluster, "DatabaseCluster", ns, NAME))

    _wait(cluster, ring, handled, "the refused spec handled: observedGeneration current, Ready", 120)
    time.sleep(10)  # had anything left, it would show by now
    assert apps.read_namespaced_stateful_set(names.statefulset, ns).spec.replicas == NODES
    assert sorted(pods_by_name(cluster, ring)) == sorted(ALL_UN)
    assert ring_states(status_of(cluster, "DatabaseCluster", ns, NAME)) == ALL_UN
    assert _factors(ring, "ledger", "system_auth") == {"ledger": "3", "system_auth": "3"}

    patch_spec(
        cluster, ring, {"replicas": NODES, "databases": [{"name": KEYSPACE, "replicationFactor": NODES}]}
    )
    raised = (KEYSPACE, "system_auth", "ledger")

    def restored() -> bool:
        status = status_of(cluster, "DatabaseCluster", ns, NAME)
        generation, observed = _generations(cluster, ring)
        if condition(status, "ScaleDown").get("status") != "True" or not ring_ready(status):
            return False
        if generation == observed and _factors(ring, *raised) == dict.fromkeys(raised, "3"):
            return True
        time.sleep(2)
        return False

    _wait(cluster, ring, restored, "ScaleDown True, the spec handled, every keyspace at RF 3", 300)


def shrinks_once_lowered_then_grows_back(cluster: LocalCluster, ring: Ring) -> None:
    """The refusal is level-triggered: ``replicas: 2`` refused for ``ledger`` (left by the step before),
    then ``ledger`` lowered to RF 2 over CQL (no spec change): the status refresh asks again and the ring
    shrinks by itself: ``cs-2`` decommissioned (its Event), the StatefulSet at 2, its PVC deleted, two
    members UN and every row there at ALL. ``replicas: 3`` again: a new ``cs-2`` bootstraps on an empty
    volume, three members UN, the spec's keyspace and ``system_auth`` back at RF 3."""
    steady(cluster, ring)
    ns, names, grown = ring.namespace, ChildNames(NAME), f"{NAME}-2"
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    _refused(cluster, ring)
    _superuser_cql(ring, "ALTER KEYSPACE ledger WITH replication = "
                         "{'class': 'SimpleStrategy', 'replication_factor': 2}")  # fmt: skip
    lowered = time.monotonic()
    two = {f"{NAME}-0": "UN", f"{NAME}-1": "UN"}

    def shrunk() -> bool:
        status = status_of(cluster, "DatabaseCluster", ns, NAME)
        return (
            ring_states(status) == two
            and condition(status, "ScaleDown").get("status") == "True"
            and apps.read_namespaced_stateful_set(names.statefulset, ns).spec.replicas == 2
            and sorted(pods_by_name(cluster, ring)) == sorted(two)
            and names.data_claim(2)
            not in {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items}
        )

    _wait(
        cluster, ring, shrunk, "cs-2 decommissioned after ledger was lowered, the StatefulSet at 2", REPLACE
    )
    print(f"cassandra: the ring shrank {time.monotonic() - lowered:.0f}s after ledger was lowered over CQL")
    notes = _events(cluster, ring, "Normal", "Decommissioned")
    assert any(f"{grown} left the ring" in n for n in notes), notes
    items = rows_at(ring.rw, f"SELECT id FROM {KEYSPACE}.items", ConsistencyLevel.ALL)
    assert sorted(r.id for r in items) == list(range(ROWS))
    assert _factors(ring, KEYSPACE, "system_auth") == {KEYSPACE: "2", "system_auth": "2"}

    grow = time.monotonic()
    patch_spec(
        cluster, ring, {"replicas": NODES, "databases": [{"name": KEYSPACE, "replicationFactor": NODES}]}
    )
    raised = (KEYSPACE, "system_auth")

    def grown_back() -> bool:
        status = status_of(cluster, "DatabaseCluster", ns, NAME)
        if not ring_ready(status) or ring_states(status) != ALL_UN:
            return False
        return _factors(ring, *raised) == dict.fromkeys(raised, "3")

    _wait(cluster, ring, grown_back, f"{grown} bootstrapped: three members UN, RF 3 again", REPLACE)
    print(f"cassandra: {grown} bootstrapped and UN {time.monotonic() - grow:.0f}s after replicas: 3")
    items = rows_at(ring.rw, f"SELECT id FROM {KEYSPACE}.items", ConsistencyLevel.ALL)
    assert sorted(r.id for r in items) == list(range(ROWS))
    _superuser_cql(ring, "DROP KEYSPACE ledger")


def scale_out_and_back(cluster: LocalCluster, ring: Ring) -> None:
    """``replicas: 4``: a fourth node bootstraps (its start script waits for node 2 to serve CQL, then it
    joins and streams its ranges) and the ring is Ready with four members UN, the keyspaces still at RF 3
    (``min(ring, 3)``). ``replicas: 3`` again: the Decommission phase asks node 3's agent to leave
    (``nodetool decommission`` streams its ranges back), ``ScaleDown`` True ``Decommissioned`` with its
    Event, only then the StatefulSet shrinks and the node's PVC is deleted; three members UN, the node's
    address gone from the ring, every row there at ALL."""
    steady(cluster, ring)
    ns, grown = ring.namespace, f"{NAME}-{NODES}"
    four = {**ALL_UN, grown: "UN"}
    started = time.monotonic()
    patch_spec(cluster, ring, {"replicas": NODES + 1})

    def joined() -> bool:
        status = status_of(cluster, "DatabaseCluster", ns, NAME)
        return ring_states(status) == four and settled(status)

    try:
        wait_until(joined, f"{grown} joined: four members UN, Ready", REPLACE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(cluster, ns, NAME)}") from None
    print(f"cassandra: {grown} bootstrapped and UN {time.monotonic() - started:.0f}s after replicas: 4")
    address = members_by_pod(cluster, ring)[grown]["address"]
    assert members_by_pod(cluster, ring)[grown]["tokens"] == 16
    assert _factors(ring, KEYSPACE, "system_auth") == dict.fromkeys((KEYSPACE, "system_auth"), "3")

    shrunk = time.monotonic()
    patch_spec(cluster, ring, {"replicas": NODES})
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    claim = ChildNames(NAME).data_claim(NODES)

    def left() -> bool:
        status = status_of(cluster, "DatabaseCluster", ns, NAME)
        return (
            ring_states(status) == ALL_UN
            and condition(status, "ScaleDown").get("status") == "True"
            and apps.read_namespaced_stateful_set(ChildNames(NAME).statefulset, ns).spec.replicas == NODES
            and sorted(pods_by_name(cluster, ring)) == sorted(ALL_UN)
            and claim not in {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items}
        )

    try:
        wait_until(left, f"{grown} decommissioned, the StatefulSet at 3, its PVC deleted", REPLACE)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{report(cluster, ns, NAME)}") from None
    print(f"cassandra: {grown} decommissioned and gone {time.monotonic() - shrunk:.0f}s after replicas: 3")
    # The Event, not the condition's reason: a status refresh that began before the reconcile's write may
    # put the earlier ScaleDown back (docs/clustering.md); it is True either way.
    notes = _events(cluster, ring, "Normal", "Decommissioned")
    assert any(f"{grown} left the ring" in n for n in notes), notes
    now = pods_by_name(cluster, ring)
    assert address not in nodetool(now[f"{NAME}-0"].metadata.uid, "status")
    items = rows_at(ring.rw, f"SELECT id FROM {KEYSPACE}.items", ConsistencyLevel.ALL)
    assert sorted(r.id for r in items) == list(range(ROWS))
    wait_until(lambda: ring_ready(status_of(cluster, "DatabaseCluster", ns, NAME)), "the ring Ready", 120)
