"""Storage autogrow and recovery from a full disk, on real pods with volumes that really fill and grow.

The data volumes are of the real node's expandable StorageClass: each is a size-limited XFS image,
loop-mounted, grown online by the node's resizer when its claim asks for more (hack/realnode). A host
client writes through the rw Service's ClusterIP to PostgreSQL 15 (a two-member DatabaseCluster, and
a DatabaseInstance for the full disk) in batches, each one transaction,
and records every batch whose COMMIT was acknowledged; none may be missing at the end.

- Before it fills: at 50 % the operator grows every claim by the increment, the filesystem seen by the
  agent grows with it, writes never stop, status.storage and the StorageGrown Event say what happened.
- A full disk: with the maximum already reached, writes fill the volume until PostgreSQL refuses or
  stops (a WAL write that fails is a PANIC, and crash recovery then fails on the same full disk); the
  condition StorageAutogrow says MaximumReached. Raising the maximum lets autogrow grow the volume, and a
  member whose engine is not running is restarted once on the larger filesystem: it serves again with
  every acknowledged batch.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from kubernetes import client
from realnode import EXPANDABLE_STORAGE_CLASS

from kubetrove.datastores.quantity import parse_quantity

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import PLURALS, Operator, apply_cr, get_cr
from .conftest import APP_PASSWORD, APP_USER, app_secret, real_namespace_named, real_resource, settled

DATABASE = "fill"
MI = 2**20
# name -> (kind, members): a PostgreSQL DatabaseCluster has at least a primary and one standby.
KINDS = {"early": ("DatabaseCluster", 2), "full": ("DatabaseCluster", 2), "lone": ("DatabaseInstance", 1)}
ROWS = 2000  # per batch: ~2 MiB of table and as much WAL (rows of 960 bytes stay below TOAST's threshold)
BATCH = (
    "INSERT INTO filler (batch, pad) "
    "SELECT %s, repeat(md5(g::text || %s::text), 30) FROM generate_series(1, %s) AS g"
)


def _status(cluster: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, KINDS[name][0], namespace, name) or {}).get("status")) or {}


def _ready(cluster: LocalCluster, namespace: str, name: str) -> None:
    """Wait until the cluster is Ready with its users applied and a primary; its status on a timeout."""
    try:
        wait_until(
            lambda: (
                settled(s := _status(cluster, namespace, name))
                and (KINDS[name][0] == "DatabaseInstance" or bool(s.get("primary")))
            ),
            f"{name} Ready with a primary",
            timeout=400,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {_status(cluster, namespace, name)}") from None


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def _connect(host: str) -> Any:
    return psycopg.connect(
        host=host, user=APP_USER, password=APP_PASSWORD, dbname=DATABASE, autocommit=True, connect_timeout=5
    )


class Filler:
    """Writes batches through one Service address; ``acked`` holds every batch whose COMMIT returned."""

    def __init__(self, host: str) -> None:
        self.host, self._next = host, 0
        self.acked: list[int] = []
        self.failures: list[str] = []
        self.down = False  # the last failure was a server that could not be reached (not an SQL error)

    def batch(self) -> bool:
        """One batch; False (its error kept) when the server refused it or could not be reached
        (``down``: the connection itself failed or broke, not a statement)."""
        n, self._next = self._next, self._next + 1
        try:
            conn = _connect(self.host)
        except psycopg.OperationalError as exc:  # refused, reset, or "the database system is in recovery"
            return self._failed(n, exc, down=True)
        try:
            with conn:
                conn.execute("SET statement_timeout = '30s'")
                conn.execute(BATCH, (n, n, ROWS))
            self.acked.append(n)
            return True
        except psycopg.Error as exc:  # an unacknowledged batch is never retried: it may or may not exist
            return self._failed(n, exc, down=conn.broken)

    def _failed(self, n: int, exc: Exception, down: bool) -> bool:
        self.failures.append(f"batch {n}: {str(exc).strip().splitlines()[0]}")
        self.down = down
        return False

    def until(self, done: Callable[[], bool], most: int, pause: float = 0.0) -> None:
        """Batches until ``done()`` (checked after each), at most ``most``, ``pause`` seconds apart."""
        for _ in range(most):
            if done():
                return
            self.batch()
            time.sleep(pause)
        raise AssertionError(f"still not done after {most} batches; last errors: {self.failures[-3:]}")

    def missing(self) -> list[int]:
        """Acknowledged batches not (entirely) in the table now."""
        with _connect(self.host) as conn:
            rows = conn.execute("SELECT batch, count(*) FROM filler GROUP BY batch").fetchall()
        present = {b for b, count in rows if count == ROWS}
        return sorted(set(self.acked) - present)


def _fs_size(name: str, status: dict[str, Any]) -> int:
    """The smallest member filesystem as the agents last measured them (df's Used + Avail), in bytes;
    0 while some member has no figures."""
    sizes = [
        int(m.get("volumeUsedBytes") or 0) + int(m.get("volumeAvailableBytes") or 0)
        for m in status.get("members") or []
    ]
    return min(sizes) if len(sizes) == KINDS[name][1] else 0


def _claims(cluster: LocalCluster, namespace: str, name: str) -> set[tuple[int, int]]:
    """The distinct (requested, capacity) of the members' data claims, in bytes."""
    core, out = client.CoreV1Api(cluster.api), set()
    for i in range(KINDS[name][1]):
        pvc = core.read_namespaced_persistent_volume_claim(f"data-{name}-{i}", namespace)
        capacity = (pvc.status.capacity or {}).get("storage", "0")
        out.add((int(parse_quantity(pvc.spec.resources.requests["storage"])), int(parse_quantity(capacity))))
    return out


def _superuser_password(cluster: LocalCluster, namespace: str, name: str) -> str:
    secret = client.CoreV1Api(cluster.api).read_namespaced_secret(f"{name}-credentials", namespace)
    return base64.b64decode(secret.data["superuser-password"]).decode()


def _panics(host: str, password: str) -> bool:
    """Make PostgreSQL start new WAL segments until it cannot (True: the server went away)."""
    for _ in range(10):
        try:
            with psycopg.connect(
                host=host, user="postgres", password=password, autocommit=True, connect_timeout=5
            ) as conn:
                conn.execute("CHECKPOINT")
                conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
        except psycopg.OperationalError as exc:
            if not exc.sqlstate:  # the connection, not a statement: the server is gone
                return True
    return False


def _events(cluster: LocalCluster, namespace: str, name: str) -> dict[str, str]:
    """reason -> message of the Events about the cluster."""
    items = client.CoreV1Api(cluster.api).list_namespaced_event(namespace).items
    return {e.reason: e.message for e in items if e.involved_object.name == name}


@pytest.fixture
def grown_cluster(
    local_cluster: LocalCluster, operator: Operator, real_node: str
) -> Iterator[Callable[[str, str, dict[str, Any]], tuple[dict[str, Any], str]]]:
    """Make the PostgreSQL DatabaseCluster or DatabaseInstance ``name`` (KINDS) on ``size`` of the
    expandable class with ``autogrow``; returns (the resource, the rw ClusterIP) once it is settled and
    holds the table ``filler``."""
    with real_namespace_named(local_cluster.api, f"real-grow-{uuid.uuid4().hex[:6]}") as ns:
        app_secret(local_cluster.api, ns)

        def make(name: str, size: str, autogrow: dict[str, Any]) -> tuple[dict[str, Any], str]:
            kind, members = KINDS[name]
            body = real_resource(kind, name, ns, "postgresql", "15", DATABASE)
            if kind == "DatabaseCluster":
                body["spec"]["replicas"] = members
            body["spec"]["storage"] = {
                "size": size, "storageClassName": EXPANDABLE_STORAGE_CLASS, "autogrow": autogrow,
            }  # fmt: skip
            apply_cr(local_cluster, body)
            _ready(local_cluster, ns, name)
            rw = client.CoreV1Api(local_cluster.api).read_namespaced_service(f"{name}-rw", ns).spec.cluster_ip

            def create_table() -> bool:
                try:
                    with _connect(rw) as conn:
                        conn.execute("CREATE TABLE IF NOT EXISTS filler (batch INT, pad TEXT)")
                    return True
                except psycopg.OperationalError:  # the Service not routing yet
                    return False

            wait_until(create_table, "the table through the rw Service", timeout=60)
            made.append(name)
            return body, rw

        made: list[str] = []
        yield make
        # Deleted while the operator runs (it removes its finalizer), before the namespace goes; a
        # database with a full disk, or one whose engine is down, is deleted like any other.
        for name in made:
            local_cluster.kubectl("delete", PLURALS[KINDS[name][0]], name, "-n", ns, "--wait=false")
        wait_until(
            lambda: not any(get_cr(local_cluster.api, KINDS[n][0], ns, n) for n in made),
            f"{made} deleted",
            timeout=240,
        )


def test_volumes_grow_before_they_fill_and_writes_never_stop(
    local_cluster: LocalCluster,
    grown_cluster: Callable[[str, str, dict[str, Any]], tuple[dict[str, Any], str]],
) -> None:
    name = "early"
    body, rw = grown_cluster(name, "256Mi", {"threshold": 50, "increment": "128Mi", "maximum": "512Mi"})
    ns = body["metadata"]["namespace"]
    status = _status(local_cluster, ns, name)
    assert _condition(status, "StorageAutogrow").get("reason") in ("BelowThreshold", None), status
    before = _fs_size(name, status)
    assert 230 * MI < before <= 256 * MI, f"the members' filesystems are not the claims' 256Mi: {status}"

    # A steady writer (about 2 MiB/s of rows and as much WAL): autogrow acts within seconds of the
    # crossing, well before the volume fills (from 50 % to full takes this writer a minute).
    filler, started = Filler(rw), time.monotonic()
    filler.until(
        lambda: (_status(local_cluster, ns, name).get("storage") or {}).get("size") == "384Mi", 90, 1.0
    )
    print(
        f"grew after {len(filler.acked)} batches, {time.monotonic() - started:.0f} s; "
        f"errors {filler.failures}"
    )

    def grown() -> bool:
        claims = _claims(local_cluster, ns, name)
        return (
            claims == {(384 * MI, 384 * MI)} and _fs_size(name, _status(local_cluster, ns, name)) > 350 * MI
        )

    wait_until(grown, "the claims and the filesystems the agents measure at 384Mi", timeout=180)
    status = _status(local_cluster, ns, name)
    growth = status["storage"]["lastGrowth"]
    assert (growth["from"], growth["to"]) == ("256Mi", "384Mi"), growth
    assert growth["member"] in (f"{name}-0", f"{name}-1"), growth
    assert growth.get("restarted") in (None, []), f"a running member was restarted: {growth}"
    assert "384Mi" in _events(local_cluster, ns, name).get("StorageGrown", ""), _events(
        local_cluster, ns, name
    )
    wait_until(
        lambda: (
            _condition(_status(local_cluster, ns, name), "StorageAutogrow").get("reason") == "BelowThreshold"
        ),
        "StorageAutogrow back to BelowThreshold",
        timeout=120,
    )
    # Grown before it was full: no batch failed, more fit now, and each acknowledged one is there.
    assert all(filler.batch() for _ in range(3)), filler.failures
    assert filler.failures == [], filler.failures
    assert filler.missing() == []


@pytest.mark.parametrize("name", ["full", "lone"])
def test_a_full_disk_is_grown_and_its_stopped_engine_restarted_with_nothing_lost(
    name: str,
    local_cluster: LocalCluster,
    grown_cluster: Callable[[str, str, dict[str, Any]], tuple[dict[str, Any], str]],
) -> None:
    body, rw = grown_cluster(name, "128Mi", {"threshold": 90, "increment": "128Mi", "maximum": "128Mi"})
    ns = body["metadata"]["namespace"]

    # Fill until ENOSPC: on a table file PostgreSQL answers "could not extend file" (an ERROR) and stays
    # up; on a WAL segment it PANICs, crash recovery fails on the same full disk, and the engine
    # container exits and restarts in a loop. Which comes first depends on the timing of the writes.
    filler = Filler(rw)
    failed_in_a_row = 0
    for _ in range(100):
        failed_in_a_row = 0 if filler.batch() else failed_in_a_row + 1
        if failed_in_a_row == 5 or filler.down:
            break
    assert filler.acked and failed_in_a_row, f"the volume never filled: {len(filler.acked)} acknowledged"
    if not filler.down:
        assert "No space left on device" in filler.failures[-1], filler.failures[-3:]
        # Up but full: the WAL needs a new segment, as under any write load (here forced, as the
        # superuser, by a checkpoint record after a WAL switch), and that is the PANIC.
        assert _panics(rw, _superuser_password(local_cluster, ns, name)), "PostgreSQL never stopped"
    print(f"full after {len(filler.acked)} acknowledged batches; last errors: {filler.failures[-3:]}")
    wait_until(
        lambda: (
            _condition(_status(local_cluster, ns, name), "StorageAutogrow").get("reason") == "MaximumReached"
        ),
        "StorageAutogrow False MaximumReached",
        timeout=120,
    )
    assert _claims(local_cluster, ns, name) == {(128 * MI, 128 * MI)}  # nothing grew past the maximum

    # Raise the maximum: the volume grows; an engine that stopped is restarted on the larger filesystem.
    body["spec"]["storage"]["autogrow"]["maximum"] = "384Mi"
    apply_cr(local_cluster, body)
    wait_until(
        lambda: _claims(local_cluster, ns, name) == {(256 * MI, 256 * MI)},
        "the claims grown to 256Mi",
        timeout=180,
    )

    # The restart comes a cycle after the claims' capacity reached the new size; until then the status
    # may still say Ready (the kubelet has not reported the stopped engine yet), so wait for it first.
    # Unless the kubelet got there first: a container that crash-looped only briefly (the disk filled in
    # seconds) is restarted by its own back-off, maybe before the operator sees it stopped (seen in CI on
    # the instance). What must hold either way: the engine runs again on the grown volume, nothing lost;
    # and when the operator did restart it, its Event says so.
    def restarted() -> list[str]:
        growth = (_status(local_cluster, ns, name).get("storage") or {}).get("lastGrowth") or {}
        return list(growth.get("restarted") or [])

    def back() -> bool:
        return bool(restarted()) or filler.batch()

    try:
        wait_until(back, "the stopped member restarted (or back) after the growth", timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {_status(local_cluster, ns, name)}") from None
    _ready(local_cluster, ns, name)
    growth = _status(local_cluster, ns, name)["storage"]["lastGrowth"]
    print(f"growth: {growth}; restarted by the operator: {restarted() or 'no, by the kubelet first'}")
    assert (growth["from"], growth["to"]) == ("128Mi", "256Mi"), growth
    if restarted():
        assert "StorageRestartedMember" in _events(local_cluster, ns, name), _events(local_cluster, ns, name)

    def writable() -> bool:
        return filler.batch()

    wait_until(writable, "a batch acknowledged after the growth", timeout=120)
    assert filler.missing() == [], f"acknowledged batches lost: {filler.missing()}"
