"""spec.databases and spec.users reach a REAL MariaDB through a REAL agent, driven by the operator.

kwok's pods run nothing, so the agent of pod ``<name>-0`` runs on this host instead, in front of a
private MariaDB on loopback (the integration tier's launcher), and the operator is pointed at it with
KUBETROVE_AGENT_ENDPOINTS (runtime/config.py). The agent token Secret is created first with the token
the host agent was started with: the operator never overwrites an existing value.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from kubernetes import client

from tests.integration.servers._proc import free_port, stop, wait_for_port
from tests.integration.servers.mariadb import ADMIN, MariaDBServer, start_mariadb

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import ROOT, Operator, apply_cr, example, get_cr, poll

NAME = "users-demo"
TOKEN = "e2e-agent-token-0123456789"
# The agent's portable readWrite on MariaDB (database-level privileges), as SCHEMA_PRIVILEGES names them.
READ = {"SELECT", "SHOW VIEW"}
READ_WRITE = READ | {
    *("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES"),
    *("CREATE TEMPORARY TABLES", "LOCK TABLES", "CREATE VIEW", "TRIGGER", "EXECUTE"),
}


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[MariaDBServer]:
    server = start_mariadb(tmp_path / "mariadb")
    yield server
    server.stop()


@pytest.fixture
def host_agent(mariadb: MariaDBServer, tmp_path: Path) -> Iterator[str]:
    """The real agent (``python -m kubetrove.agent.main``) for that MariaDB on a loopback port."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port, log = free_port(), tmp_path / "agent.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "KUBETROVE_ENGINE_PASSWORD": mariadb.password}
    args = ["--engine", "mariadb", "--engine-port", str(mariadb.port), "--engine-user", ADMIN]
    args += ["--listen", "127.0.0.1", "--port", str(port), "--token-file", str(token_file)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kubetrove.agent.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(proc, port, 30, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


@pytest.fixture
def operator_to_host_agent(operator: Operator, namespace: str, host_agent: str) -> Iterator[Operator]:
    """The session's operator, restarted to reach pod ``<NAME>-0``'s agent on this host (restored after)."""
    before = os.environ.get("KUBETROVE_AGENT_ENDPOINTS")
    operator.stop()
    os.environ["KUBETROVE_AGENT_ENDPOINTS"] = json.dumps({f"{namespace}/{NAME}-0": host_agent})
    try:
        operator.start()
        yield operator
    finally:
        operator.stop()
        if before is None:
            os.environ.pop("KUBETROVE_AGENT_ENDPOINTS", None)
        else:
            os.environ["KUBETROVE_AGENT_ENDPOINTS"] = before
        operator.start()


def _secret(core: client.CoreV1Api, namespace: str, name: str, key: str) -> str:
    return base64.b64decode(core.read_namespaced_secret(name, namespace).data[key]).decode()


def _users_ready(api: client.ApiClient, namespace: str) -> dict[str, Any] | None:
    obj = get_cr(api, "DatabaseInstance", namespace, NAME) or {}
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "UsersReady" and cond["status"] == "True":
            return obj
    return None


def _schema_privileges(mariadb: MariaDBServer, user: str) -> set[tuple[str, str]]:
    rows = mariadb.query(
        "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = %s",
        (f"'{user}'@'%'",),
    )
    return {(str(db), str(priv)) for db, priv in rows}


def test_users_and_databases_are_created_through_the_agent(
    local_cluster: LocalCluster, namespace: str, mariadb: MariaDBServer, operator_to_host_agent: Operator
) -> None:
    core = client.CoreV1Api(local_cluster.api)
    meta = {"namespace": namespace}
    core.create_namespaced_secret(
        namespace, {"metadata": {**meta, "name": f"{NAME}-agent-token"}, "stringData": {"token": TOKEN}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {**meta, "name": "reader-pw"}, "stringData": {"pw": "Reader-pw-1"}}
    )
    body = example("mariadb-instance", namespace)
    body["metadata"]["name"] = NAME
    body["spec"]["databases"] = [{"name": "shop"}, {"name": "other"}]
    body["spec"]["users"] = [
        {"name": "app", "grants": [{"database": "shop", "privileges": ["readWrite"]}]},
        {
            "name": "reader",
            "passwordSecretRef": {"name": "reader-pw", "key": "pw"},
            "grants": [{"database": "shop", "privileges": ["read"]}],
        },
    ]
    apply_cr(local_cluster, body)
    try:
        poll(lambda: _users_ready(local_cluster.api, namespace), "UsersReady", 120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log tail:\n{operator_to_host_agent.log()[-3000:]}") from None

    databases = {row[0] for row in mariadb.query("SHOW DATABASES")}
    assert {"shop", "other"} <= databases
    password = _secret(core, namespace, f"{NAME}-user-app", "password")
    app = mariadb.connect("app", password)
    with app.cursor() as cur:
        cur.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO shop.t VALUES (1)")
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("CREATE TABLE other.t (id INT PRIMARY KEY)")
    app.close()
    assert _schema_privileges(mariadb, "app") == {("shop", p) for p in READ_WRITE}
    assert _schema_privileges(mariadb, "reader") == {("shop", p) for p in READ}
    assert mariadb.query(
        "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s", ("'app'@'%'",)
    ) == [("USAGE",)]
    reader = mariadb.connect("reader", "Reader-pw-1")
    with reader.cursor() as cur:
        cur.execute("SELECT id FROM shop.t")
        assert cur.fetchall() == ((1,),)
    reader.close()

    # Removing a user drops it; removing a database keeps it (the API's promise).
    body["spec"]["users"] = body["spec"]["users"][:1]
    body["spec"]["databases"] = [{"name": "shop"}]
    apply_cr(local_cluster, body)
    poll(lambda: not mariadb.query("SELECT 1 FROM mysql.user WHERE User = 'reader'"), "reader dropped", 120)
    assert "other" in {row[0] for row in mariadb.query("SHOW DATABASES")}
    assert mariadb.query("SELECT 1 FROM mysql.user WHERE User = 'app'")
