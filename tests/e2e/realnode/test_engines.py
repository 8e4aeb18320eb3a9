"""Real engines on the real node, driven by the operator: a DatabaseInstance of MariaDB and of
PostgreSQL becomes Ready with a real server in its pod, and a user from the spec logs in with its
password through the read-write Service (its ClusterIP, reached from the host through kube-proxy).

Both instances are created once per module and start side by side (2 cores: one start-up at a time
would double the run time); each test then checks one thing on one engine.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from kubernetes import client

from kubetrove.render.names import ChildNames

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import Operator, apply_cr, get_cr, wait_phase
from .conftest import APP_PASSWORD, APP_USER, real_namespace_named, real_resource, settled

USER, PASSWORD, DATABASE = APP_USER, APP_PASSWORD, "shop"
ENGINES = {
    # engine: (version with a locally built image, port, credentials key of the admin password, admin user)
    "mariadb": ("10.11", 3306, "root-password", "root"),
    "postgresql": ("15", 5432, "superuser-password", "postgres"),
}


def _instance(engine: str, namespace: str) -> dict[str, Any]:
    return real_resource(
        "DatabaseInstance", f"{engine}-real", namespace, engine, ENGINES[engine][0], DATABASE
    )


@pytest.fixture(scope="module")
def instances(local_cluster: LocalCluster, operator: Operator, real_node: str) -> Iterator[str]:
    """A namespace holding one DatabaseInstance per engine (and the app user's password Secret)."""
    with real_namespace_named(local_cluster.api, f"real-engines-{uuid.uuid4().hex[:6]}") as ns:
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name="app-password"), string_data={"password": PASSWORD}
        )
        client.CoreV1Api(local_cluster.api).create_namespaced_secret(ns, secret)
        for engine in ENGINES:
            apply_cr(local_cluster, _instance(engine, ns))
        yield ns


def _open(engine: str, host: str, user: str, password: str, database: str | None) -> Any:
    port = ENGINES[engine][1]
    if engine == "mariadb":
        return pymysql.connect(host=host, port=port, user=user, password=password, database=database,
                               connect_timeout=10, autocommit=True)  # fmt: skip
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=database or "postgres",
                           connect_timeout=10, autocommit=True)  # fmt: skip


def _unrouted(exc: Exception) -> bool:
    """A refused or reset connection: the Service does not route to the pod YET (not a login error)."""
    text = str(exc).lower()
    return "refused" in text or "reset by peer" in text or "lost connection" in text


def _connect(engine: str, host: str, user: str, password: str, database: str | None) -> Any:
    """Connect through the Service. Ready means the pod is ready; the EndpointSlice and kube-proxy's
    rules follow within seconds (eventually consistent), so a refused connection is retried. A login
    failure is not."""
    last: list[Exception] = []

    def attempt() -> Any:
        try:
            return _open(engine, host, user, password, database)
        except (pymysql.err.OperationalError, psycopg.OperationalError) as exc:
            if not _unrouted(exc):
                raise
            last[:] = [exc]
            return None

    return wait_until(attempt, f"{engine} at {host} to accept connections (last error: {last})", timeout=60)


def _scalar(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def _ready_host(cluster: LocalCluster, operator: Operator, namespace: str, engine: str) -> str:
    """Wait for the instance to be Ready; the ClusterIP of its read-write Service."""
    body = _instance(engine, namespace)
    wait_phase(cluster.api, body, "Ready", timeout=300, op=operator)
    name = body["metadata"]["name"]

    # Users are applied on a ready member, just after Ready: wait for UsersReady before logging in.
    def users_ready() -> bool:
        return settled((get_cr(cluster.api, "DatabaseInstance", namespace, name) or {}).get("status") or {})

    wait_until(users_ready, f"{name}: UsersReady", timeout=120)
    rw = ChildNames(f"{engine}-real").rw_service
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(rw, namespace).spec.cluster_ip)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_instance_ready_with_a_real_engine(
    local_cluster: LocalCluster, operator: Operator, instances: str, real_node: str, engine: str
) -> None:
    host = _ready_host(local_cluster, operator, instances, engine)
    core = client.CoreV1Api(local_cluster.api)
    names = ChildNames(f"{engine}-real")
    assert core.read_namespaced_pod(names.pod(0), instances).spec.node_name == real_node
    creds = core.read_namespaced_secret(names.credentials_secret, instances).data
    _, _, admin_key, admin_user = ENGINES[engine]
    with _connect(engine, host, admin_user, base64.b64decode(creds[admin_key]).decode(), None) as admin:
        version = str(_scalar(admin, "SELECT version()"))
    assert ("MariaDB" if engine == "mariadb" else "PostgreSQL") in version


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_spec_user_logs_in_through_the_service(
    local_cluster: LocalCluster, operator: Operator, instances: str, engine: str
) -> None:
    host = _ready_host(local_cluster, operator, instances, engine)
    with _connect(engine, host, USER, PASSWORD, DATABASE) as app:
        with app.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
            cur.execute("INSERT INTO t VALUES (1, 'real')")
        assert _scalar(app, "SELECT v FROM t WHERE id = 1") == "real"
