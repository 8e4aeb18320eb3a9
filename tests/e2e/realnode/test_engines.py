"""Every MariaDB and PostgreSQL version of the catalog runs on the real node, driven by the operator:
one DatabaseInstance per version becomes Ready with the image the catalog names (built by hack/images
from Debian packages and pulled from the local registry) and the version's own agent image, the server
reports the version its tag names, and a user from the spec logs in with its password through the
read-write Service (its ClusterIP, reached from the host through kube-proxy) and writes and reads.
Each PostgreSQL serves its server log (the logging collector's CSV files on its volume) through its
agent: a slow statement, a refused CREATE ROLE with its password redacted.
Then the MariaDB 10.11 instance is upgraded in place to 11.8: its data stays, the server runs 11.8,
its system tables were upgraded (the image's MARIADB_AUTO_UPGRADE), and users are applied again. And the
11.8 instance's slow statements reach ``kubectl trove logs --slow`` (and ``--follow``) through its agent's
stdout, their passwords redacted.

All instances are created once per module and start side by side (2 cores: one start-up at a time
would multiply the run time); each test then checks one version.
"""

from __future__ import annotations

import base64
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest
from kubernetes import client
from realnode import registry

from kubetrove.agent.protocol import ErrorLogReply, SlowLogReply
from kubetrove.datastores.base import qualified_image
from kubetrove.datastores.postgresql.strategy import LOG_DIR
from kubetrove.datastores.registry import REGISTRY
from kubetrove.render.names import AGENT_CONTAINER, ENGINE_CONTAINER, ChildNames

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import ROOT, Operator, apply_cr, get_cr, wait_phase
from .conftest import APP_PASSWORD, APP_USER, agent_logs, real_namespace_named, real_resource, settled

USER, PASSWORD, DATABASE = APP_USER, APP_PASSWORD, "shop"
ENGINES = {
    # engine: (port, credentials key of the admin password, admin user)
    "mariadb": (3306, "root-password", "root"),
    "postgresql": (5432, "superuser-password", "postgres"),
}
# Every catalog version of both engines (the catalog names only versions hack/images builds).
VERSIONS = [(engine, version) for engine in ENGINES for version in REGISTRY[engine].versions]  # type: ignore[index]
UPGRADE = ("10.11", "11.8")  # MariaDB's in-place upgrade path under test


def _name(engine: str, version: str) -> str:
    return f"{engine}-{version.replace('.', '-')}"


def _instance(engine: str, version: str, namespace: str) -> dict[str, Any]:
    return real_resource("DatabaseInstance", _name(engine, version), namespace, engine, version, DATABASE)


@pytest.fixture(scope="module")
def instances(local_cluster: LocalCluster, operator: Operator, real_node: str) -> Iterator[str]:
    """A namespace holding one DatabaseInstance per catalog version (and the app user's Secret)."""
    with real_namespace_named(local_cluster.api, f"real-engines-{uuid.uuid4().hex[:6]}") as ns:
        secret = client.V1Secret(
            metadata=client.V1ObjectMeta(name="app-password"), string_data={"password": PASSWORD}
        )
        client.CoreV1Api(local_cluster.api).create_namespaced_secret(ns, secret)
        for engine, version in VERSIONS:
            apply_cr(local_cluster, _instance(engine, version, ns))
        yield ns


def _open(engine: str, host: str, user: str, password: str, database: str | None) -> Any:
    port = ENGINES[engine][0]
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


def _ready_host(cluster: LocalCluster, operator: Operator, namespace: str, engine: str, version: str) -> str:
    """Wait for the instance to be Ready with its users applied; the ClusterIP of its rw Service."""
    body = _instance(engine, version, namespace)
    wait_phase(cluster.api, body, "Ready", timeout=420, op=operator)
    name = body["metadata"]["name"]

    # Users are applied on a ready member, just after Ready: wait for UsersReady before logging in.
    def users_ready() -> bool:
        return settled((get_cr(cluster.api, "DatabaseInstance", namespace, name) or {}).get("status") or {})

    wait_until(users_ready, f"{name}: UsersReady", timeout=120)
    rw = ChildNames(name).rw_service
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(rw, namespace).spec.cluster_ip)


def _admin(cluster: LocalCluster, namespace: str, engine: str, name: str, host: str) -> Any:
    creds = client.CoreV1Api(cluster.api).read_namespaced_secret(
        ChildNames(name).credentials_secret, namespace
    )
    _, key, user = ENGINES[engine]
    return _connect(engine, host, user, base64.b64decode(creds.data[key]).decode(), None)


def _server_version(engine: str, conn: Any) -> str:
    """The server's own version number ("11.8.9", "18.6")."""
    sql = "SELECT version()" if engine == "mariadb" else "SHOW server_version"
    return str(_scalar(conn, sql)).split("-")[0].split(" ")[0]


@pytest.mark.parametrize(("engine", "version"), VERSIONS)
def test_every_catalog_version_runs_its_images_on_the_real_node(
    local_cluster: LocalCluster, operator: Operator, instances: str, real_node: str, engine: str, version: str
) -> None:
    name = _name(engine, version)
    host = _ready_host(local_cluster, operator, instances, engine, version)
    info = REGISTRY[engine].versions[version]  # type: ignore[index]
    pod = client.CoreV1Api(local_cluster.api).read_namespaced_pod(ChildNames(name).pod(0), instances)
    assert pod.spec.node_name == real_node
    images = {c.name: c.image for c in pod.spec.containers}
    assert images[AGENT_CONTAINER] == qualified_image(registry.REPOSITORY, info.agent_image)
    assert images[ENGINE_CONTAINER] == qualified_image(registry.REPOSITORY, info.image)
    with _admin(local_cluster, instances, engine, name, host) as admin:
        assert _server_version(engine, admin) == info.image.rpartition(":")[2]  # the tag names the build
    with _connect(engine, host, USER, PASSWORD, DATABASE) as app:
        with app.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
            cur.execute(f"INSERT INTO t VALUES (1, 'real {version}')")
        assert _scalar(app, "SELECT v FROM t WHERE id = 1") == f"real {version}"
    if engine == "postgresql":
        _postgresql_logs_through_the_agent(local_cluster, instances, name, host, pod)


def _postgresql_logs_through_the_agent(
    cluster: LocalCluster, namespace: str, name: str, host: str, pod: Any
) -> None:
    """The server log is the collector's CSV files on the volume, read by the agent: a slow statement,
    a refused CREATE ROLE with its password redacted; the engine container's own log says where it went."""
    marker, secret = f"kt-slow-{uuid.uuid4().hex[:8]}", f"S3cret-{uuid.uuid4().hex[:12]}"
    with _admin(cluster, namespace, "postgresql", name, host) as admin:
        admin.execute("SET log_min_duration_statement = 0")  # this session only
        admin.execute(f"SELECT 1 /* {marker} */")
        with pytest.raises(psycopg.errors.ReservedName):
            admin.execute(f"CREATE ROLE pg_kt_refused PASSWORD '{secret}'")

    def logged() -> tuple[SlowLogReply, ErrorLogReply] | None:
        slow, errors = agent_logs(cluster.api, namespace, name, pod)  # written a moment after the statement
        return (slow, errors) if any("pg_kt_refused" in e.message for e in errors.entries) else None

    slow, errors = wait_until(logged, f"{name}: the refused CREATE ROLE in GET /v1/logs/error", timeout=60)
    assert [e.user for e in slow.entries if marker in e.query] == ["postgres"]
    assert secret not in errors.model_dump_json()
    assert any("PASSWORD '***'" in e.message and e.level == "ERROR" for e in errors.entries)
    assert any(e.message == "database system is ready to accept connections" for e in errors.entries)
    engine_log = cluster.kubectl("-n", namespace, "logs", pod.metadata.name, "-c", ENGINE_CONTAINER)
    # What PostgreSQL says on stderr before its logging collector takes over, and nothing after.
    assert f'Future log output will appear in directory "{LOG_DIR}"' in engine_log, engine_log[-2000:]
    assert "pg_kt_refused" not in engine_log


def test_mariadb_upgrades_in_place_and_keeps_its_data(
    local_cluster: LocalCluster, operator: Operator, instances: str
) -> None:
    old, new = UPGRADE
    name = _name("mariadb", old)
    host = _ready_host(local_cluster, operator, instances, "mariadb", old)  # the start test wrote a row
    pod_name = ChildNames(name).pod(0)
    core = client.CoreV1Api(local_cluster.api)
    before = core.read_namespaced_pod(pod_name, instances).metadata.uid
    local_cluster.kubectl("-n", instances, "patch", "databaseinstance", name, "--type=merge",
                          "-p", f'{{"spec": {{"datastore": {{"version": "{new}"}}}}}}')  # fmt: skip
    target = REGISTRY["mariadb"].versions[new]  # type: ignore[index]

    def upgraded() -> bool:
        pod = core.read_namespaced_pod(pod_name, instances)
        statuses = pod.status.container_statuses or []
        return (
            pod.metadata.uid != before
            and {c.name: c.image for c in pod.spec.containers}[ENGINE_CONTAINER]
            == qualified_image(registry.REPOSITORY, target.image)
            and bool(statuses)
            and all(s.ready for s in statuses)
        )

    wait_until(upgraded, f"{pod_name} running mariadb {new}", timeout=420)
    body = _instance("mariadb", new, instances)
    wait_phase(local_cluster.api, body, "Ready", timeout=300, op=operator)
    with _admin(local_cluster, instances, "mariadb", name, host) as admin:
        assert _server_version("mariadb", admin) == target.image.rpartition(":")[2]
    engine_log = local_cluster.kubectl("-n", instances, "logs", pod_name, "-c", ENGINE_CONTAINER)
    assert f"entrypoint: upgraded to {new}" in engine_log, engine_log[-2000:]
    with _connect("mariadb", host, USER, PASSWORD, DATABASE) as app:
        assert _scalar(app, "SELECT v FROM t WHERE id = 1") == f"real {old}"
        with app.cursor() as cur:
            cur.execute(f"INSERT INTO t VALUES (2, 'after {new}')")
        assert _scalar(app, "SELECT count(*) FROM t") == 2


def _trove(cluster: LocalCluster, namespace: str, *args: str) -> list[str]:
    """``kubectl trove ARGS`` as a user runs it (the plugin's entry point, the cluster's kubeconfig)."""
    config = str(cluster.kubeconfig)
    return [sys.executable, "-m", "kubetrove.cli.main", "--kubeconfig", config, "-n", namespace, *args]


def test_mariadb_slow_statements_reach_kubectl_trove_logs_slow_without_their_passwords(
    local_cluster: LocalCluster, operator: Operator, instances: str
) -> None:
    version = UPGRADE[1]  # the instance created at 11.8 (the 10.11 one is the upgrade test's)
    name = _name("mariadb", version)
    host = _ready_host(local_cluster, operator, instances, "mariadb", version)
    # The user's parameters (dynamic: applied live through the agent); 0 logs every statement, so the
    # CREATE USER below is in the slow log and the redaction has something to hide.
    parameters = '{"spec": {"parameters": {"slow_query_log": "ON", "long_query_time": "0"}}}'
    local_cluster.kubectl(
        "-n", instances, "patch", "databaseinstance", name, "--type=merge", "-p", parameters
    )
    with _admin(local_cluster, instances, "mariadb", name, host) as admin:
        wait_until(
            lambda: _scalar(admin, "SELECT @@GLOBAL.slow_query_log AND @@GLOBAL.long_query_time = 0") == 1,
            f"{name}: slow_query_log ON, long_query_time 0",
            timeout=120,
        )
    marker, secret = f"kt-slow-{uuid.uuid4().hex[:8]}", f"Slow-Pw-{uuid.uuid4().hex[:12]}"
    with _admin(local_cluster, instances, "mariadb", name, host) as admin, admin.cursor() as cur:
        cur.execute(f"SELECT SLEEP(1.2) /* {marker} */")
        cur.execute(f"CREATE USER 'slowlog_e2e'@'%' IDENTIFIED BY '{secret}'")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    shown: list[str] = []

    def published() -> bool:
        res = subprocess.run(_trove(local_cluster, instances, "logs", name, "--slow", "--tail", "-1"),
                             capture_output=True, text=True, env=env, timeout=60, check=False)  # fmt: skip
        assert res.returncode == 0, res.stderr
        shown[:] = res.stdout.splitlines()
        return any(marker in line for line in shown) and any("slowlog_e2e" in line for line in shown)

    try:
        wait_until(published, "the slow statements in kubectl trove logs --slow", timeout=120)
    except AssertionError as exc:
        agent = local_cluster.kubectl("-n", instances, "logs", ChildNames(name).pod(0), "-c", AGENT_CONTAINER)
        raise AssertionError(f"{exc}\nshown: {shown}\nagent log:\n{agent[-3000:]}") from None
    (slow,) = [line for line in shown if marker in line]
    assert f"root@-  SELECT SLEEP(1.2) /* {marker} */" in slow and float(slow.split()[1].rstrip("s")) >= 1.2
    assert any("CREATE USER 'slowlog_e2e'@'%' IDENTIFIED BY '***'" in line for line in shown)
    assert all(secret not in line for line in shown)

    # --follow: a statement made after the stream opened arrives on it.
    follow = subprocess.Popen(_trove(local_cluster, instances, "logs", name, "--slow", "-f", "--tail", "1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout or ()], daemon=True).start()
    try:
        seen = [lines.get(timeout=60)]  # the history's last entry: the stream is open
        later = f"kt-follow-{uuid.uuid4().hex[:8]}"
        with _admin(local_cluster, instances, "mariadb", name, host) as admin:
            _scalar(admin, f"SELECT SLEEP(1.1) /* {later} */")
        while not any(later in line for line in seen):
            seen.append(lines.get(timeout=60))  # the agent publishes every 10 s
        time.sleep(12)  # one more publication: the statement must not come twice
        while not lines.empty():
            seen.append(lines.get())
    finally:
        follow.terminate()
        follow.wait(timeout=30)
    assert len([line for line in seen if later in line]) == 1
