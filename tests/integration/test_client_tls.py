"""spec.tls on real servers: PostgreSQL 15, MariaDB 10.11, MySQL 9.7.4 and mongod 6.0.5 started with
the settings the product renders for ``tls.mode: required`` and the certificate the operator issues
(servers/tls.py).

For each: a client verifying the CA and the Service name is served; a plaintext client is refused; the
agent (as the pod runs it) still reads the status and creates a user; a replica still replicates, over
TLS (not for mongod: a standalone). And a renewal swapped into the files is served without a restart:
the real agent app, watching them as in the pod, has the engine re-read them (PostgreSQL's reload,
MariaDB's FLUSH SSL, MongoDB's rotateCertificates). Every server here is
the test's own (a shared one must not change its TLS settings).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import yaml
from aiohttp import web
from pymongo.errors import PyMongoError

from kubetrove.agent.app import make_app
from kubetrove.agent.auth import EngineTLSFiles
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver
from kubetrove.agent.protocol import Grant, Privilege, Role
from kubetrove.api.common import Engine, TLSMode
from kubetrove.datastores._mysql_common.config import tls_settings
from kubetrove.datastores.postgresql import start
from kubetrove.datastores.registry import REGISTRY
from tests.integration.conftest_servers_mysql import MySQLFactory
from tests.integration.servers import mongod, tls
from tests.integration.servers._proc import free_port
from tests.integration.servers.mariadb import ADMIN as MARIADB_ADMIN
from tests.integration.servers.mariadb import MariaDBServer, start_mariadb
from tests.integration.servers.mysql import ADMIN as MYSQL_ADMIN
from tests.integration.servers.postgresql import PostgreSQLServer, start_postgresql, start_standby

DEADLINE = 60.0


def wait_until(check: object, what: str) -> None:
    """Poll ``check()`` until it is truthy (bounded: DEADLINE seconds)."""
    deadline = time.monotonic() + DEADLINE
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


# --- PostgreSQL ----------------------------------------------------------------------------------------


def postgresql_settings(files: tls.TLSFiles, hba: Path) -> tuple[str, ...]:
    """The ssl lines of the product's postgresql.conf as ``-c`` settings, and its pg_hba.conf (required)."""
    conf = REGISTRY[Engine.POSTGRESQL].render_config({}, tls=files.settings(TLSMode.REQUIRED))
    lines = [line.split(" = ", 1) for line in conf.splitlines() if line.startswith("ssl")]
    required = REGISTRY[Engine.POSTGRESQL].container("15", files.settings(TLSMode.REQUIRED)).command[2]
    assert "'hostnossl all all all reject'" in required  # what the pod's start script writes
    hba.write_text("\n".join(start.HBA_LINES_TLS_REQUIRED) + "\n")
    shutil.chown(hba, "postgres", "postgres")
    return (*(f"{name}={value.strip(chr(39))}" for name, value in lines), f"hba_file={hba}")


@pytest.fixture
def pg_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[PostgreSQLServer, tls.TLSFiles, tuple[str, ...]]]:
    base = Path(tempfile.mkdtemp(prefix="kt-clienttls-pg-"))
    # libpq running as postgres under this root-owned HOME would fail on ~/.postgresql/postgresql.crt
    # (permission denied) once the server speaks TLS; in a pod HOME is postgres's own. No client cert.
    monkeypatch.setenv("PGSSLCERT", str(base / "no-client.crt"))
    monkeypatch.setenv("PGSSLKEY", str(base / "no-client.key"))
    shutil.chown(base, "postgres", "postgres")
    files = tls.make_files(base / "tls", owner="postgres")
    settings = postgresql_settings(files, base / "pg_hba.conf")
    server = start_postgresql(settings)
    try:
        yield server, files, settings
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def pg_connect(server: PostgreSQLServer, **kwargs: str) -> psycopg.Connection:
    login = {
        "user": "kubetrove",
        "password": server.password,
        "dbname": "shop" if "user" in kwargs else "postgres",
    }
    return psycopg.connect(
        host=tls.SERVICE,  # the name libpq verifies; hostaddr is where it connects
        hostaddr="127.0.0.1",
        port=server.port,
        connect_timeout=5,
        autocommit=True,
        **{**login, **kwargs},
    )


def test_postgresql_required_serves_verified_tls_refuses_plaintext_and_keeps_the_agent_and_a_standby(
    pg_tls: tuple[PostgreSQLServer, tls.TLSFiles, tuple[str, ...]],
) -> None:
    server, files, settings = pg_tls
    with pg_connect(server, sslmode="verify-full", sslrootcert=str(files.ca_file)) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        pg_connect(server, sslmode="disable")
    assert tls.probe(server.port, "postgres", files.ca_file).verified
    other = tls.probe(server.port, "postgres", files.ca_file, name="other-rw.ns.svc")
    assert not other.verified, other.output

    # The agent as the pod runs it: libpq's default sslmode (prefer) negotiates TLS on its own.
    driver = make_driver(Engine.POSTGRESQL.value, server.engine_config())
    assert driver.status().role is Role.STANDALONE  # no standby yet
    driver.ensure_database("shop", 1)
    driver.ensure_user("app", "app-pw-1", [Grant(database="shop", privileges=[Privilege.READ])])
    ca = str(files.ca_file)
    with pg_connect(server, sslmode="verify-full", sslrootcert=ca, user="app", password="app-pw-1"):
        pass

    # A standby clones (pg_basebackup) and streams (primary_conninfo) with the same defaults: over TLS.
    # The fixture's pg_basebackup takes a spread checkpoint (the pod's start script asks for a fast one):
    # with the new database's buffers dirty it would pace itself over minutes.
    server.query("CHECKPOINT")
    standby = start_standby(server, settings)
    try:
        server.query("CREATE TABLE t (v int)")
        server.query("INSERT INTO t VALUES (42)")
        wait_until(
            lambda: standby.query("SELECT count(*) FROM t") == [(1,)] if _has_t(standby) else False, "replay"
        )
        rows = server.query("SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s ON s.pid = r.pid")
        assert rows == [(True,)]
    finally:
        standby.stop()


def _has_t(server: PostgreSQLServer) -> bool:
    return server.query("SELECT count(*) FROM pg_class WHERE relname = 't'") == [(1,)]


async def test_postgresql_serves_a_renewed_certificate_after_the_agent_s_reload(
    pg_tls: tuple[PostgreSQLServer, tls.TLSFiles, tuple[str, ...]],
) -> None:
    server, files, _ = pg_tls
    config = server.engine_config()
    await renewed_without_restart(
        Engine.POSTGRESQL, config, files, server.proc, server.port, "postgres", owner="postgres"
    )


# --- MariaDB -------------------------------------------------------------------------------------------


def mariadb_options(files: tls.TLSFiles) -> tuple[str, ...]:
    """The product's my.cnf TLS lines (``_mysql_common.config.tls_settings``) as server options."""
    settings = tls_settings(files.settings(TLSMode.REQUIRED))
    assert ("require_secure_transport", "ON") in settings
    return tuple(f"--{name.replace('_', '-')}={value}" for name, value in settings)


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """Verifies the chain against the CA; the name is the probe's (pymysql checks the host it dials)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False
    return context


def maria_connect(server: MariaDBServer, ca_file: Path) -> Any:
    """The admin's autocommit connection over TLS verified against ``ca_file``."""
    return pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=MARIADB_ADMIN,
        password=server.password,
        ssl=tls_context(ca_file),
        autocommit=True,
        connect_timeout=5,
    )


def maria_query(server: MariaDBServer, ca_file: Path, statement: str) -> list[tuple[object, ...]]:
    conn = maria_connect(server, ca_file)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_mariadb_required_serves_verified_tls_refuses_plaintext_and_keeps_the_agent_and_a_replica(
    tmp_path: Path,
) -> None:
    files = tls.make_files(tmp_path / "tls")
    options = mariadb_options(files)
    source = start_mariadb(tmp_path / "source", 1, options=options)
    replica = start_mariadb(tmp_path / "replica", 2, options=options)
    try:
        ca = files.ca_file
        assert maria_query(source, ca, "SHOW STATUS LIKE 'Ssl_version'")[0][1].startswith("TLSv1")
        # MariaDB 10.11 answers a plaintext login under require_secure_transport with a bare "Access
        # denied" (the same login in plaintext passes on a server without it); over TLS it logged in above.
        with pytest.raises(pymysql.err.OperationalError, match=r"insecure transport|Access denied"):
            pymysql.connect(
                host="127.0.0.1",
                port=source.port,
                user=MARIADB_ADMIN,
                password=source.password,
                ssl_disabled=True,  # pymysql 1.1+ would otherwise negotiate TLS on its own
                connect_timeout=5,
            )
        assert tls.probe(source.port, "mysql", ca).verified
        assert not tls.probe(source.port, "mysql", ca, name="other-rw.ns.svc").verified

        # The agent as the pod runs it (--engine-tls: TLS required by the client too, never a silent
        # fallback): status, a user, and replication over TLS (MASTER_SSL).
        agent_config = dataclasses.replace(replica.engine_config(), tls=True)
        agent = make_driver(Engine.MARIADB.value, agent_config)
        source_agent = make_driver(
            Engine.MARIADB.value, dataclasses.replace(source.engine_config(), tls=True)
        )
        source_agent.ensure_database("users", 1)
        source_agent.ensure_user("app", "app-pw-1", [Grant(database="users", privileges=[Privilege.READ])])
        agent.set_source("127.0.0.1", source.port, MARIADB_ADMIN, source.password)
        maria_query(source, ca, "CREATE DATABASE shop")
        maria_query(source, ca, "CREATE TABLE shop.t (v int primary key)")
        maria_query(source, ca, "INSERT INTO shop.t VALUES (42)")
        wait_until(lambda: _count(replica, ca) == 1, "the replica to apply the source's rows")
        status = dict(zip(*_replica_status(replica, ca), strict=True))
        assert status["Master_SSL_Allowed"] == "Yes" and status["Slave_IO_Running"] == "Yes"
        assert agent.status().replication_running
    finally:
        replica.stop()
        source.stop()


def _count(server: MariaDBServer, ca: Path) -> int:
    try:
        return int(maria_query(server, ca, "SELECT count(*) FROM shop.t")[0][0])  # type: ignore[call-overload]
    except pymysql.err.ProgrammingError:  # not there yet
        return 0


def _replica_status(server: MariaDBServer, ca: Path) -> tuple[list[str], list[object]]:
    conn = maria_connect(server, ca)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SLAVE STATUS")
            return [d[0] for d in cur.description], list(cur.fetchone())
    finally:
        conn.close()


# --- MySQL ---------------------------------------------------------------------------------------------


def test_mysql_required_serves_verified_tls_refuses_plaintext_and_replicates_over_tls(
    mysql_factory: MySQLFactory, tmp_path: Path
) -> None:
    # Under /tmp: the chrooted 9.7 server sees /tmp at the same path (servers/mysql.py).
    files = tls.make_files(tmp_path / "tls")
    config = REGISTRY[Engine.MYSQL].render_config({}, tls=files.settings(TLSMode.REQUIRED))
    assert "require_secure_transport = ON" in config.splitlines()
    source, replica = mysql_factory("9.7", config=config), mysql_factory("9.7", config=config)
    ca = files.ca_file
    assert tls.probe(source.port, "mysql", ca).verified
    assert not tls.probe(source.port, "mysql", ca, name="other-rw.ns.svc").verified
    with pytest.raises(pymysql.err.OperationalError, match="insecure transport"):
        pymysql.connect(
            host="127.0.0.1", port=source.port, user=MYSQL_ADMIN, password=source.password,
            ssl_disabled=True, connect_timeout=5,
        )  # fmt: skip
    # The agent as the pod runs it (--engine-tls): a user, and replication with SOURCE_SSL = 1.
    # (set before the source has transactions: an empty replica of a source with some is cloned first)
    agent = make_driver(Engine.MYSQL.value, dataclasses.replace(replica.engine_config(), tls=True))
    agent.set_source("127.0.0.1", source.port, MYSQL_ADMIN, source.password)
    source_agent = make_driver(Engine.MYSQL.value, dataclasses.replace(source.engine_config(), tls=True))
    source_agent.ensure_database("shop", 1)
    source_agent.ensure_user("app", "app-pw-1", [Grant(database="shop", privileges=[Privilege.READ_WRITE])])
    wait_until(lambda: agent.status().replication_running, "the replica's threads running")
    config_row = replica.query(
        "SELECT SSL_ALLOWED FROM performance_schema.replication_connection_configuration"
    )
    assert config_row == [("YES",)]
    wait_until(
        lambda: replica.query("SELECT count(*) FROM mysql.user WHERE user = 'app'") == [(1,)],
        "the source's user on the replica",
    )


# --- MongoDB -------------------------------------------------------------------------------------------


def mongod_options(files: tls.TLSFiles) -> tuple[str, ...]:
    """The product's ``net.tls`` (mongod.conf) as mongod's command-line options."""
    conf = yaml.safe_load(REGISTRY[Engine.MONGODB].render_config({}, tls=files.settings(TLSMode.REQUIRED)))
    net = conf["net"]["tls"]
    assert net["mode"] == "requireTLS" and net["allowConnectionsWithoutCertificates"] is True
    return (
        f"--tlsMode={net['mode']}",
        f"--tlsCertificateKeyFile={net['certificateKeyFile']}",
        f"--tlsCAFile={net['CAFile']}",
        "--tlsAllowConnectionsWithoutCertificates",
    )


def start_tls_mongod(tmp_path: Path, files: tls.TLSFiles) -> mongod.Mongod:
    """A standalone mongod with a root login, then restarted with the rendered ``requireTLS`` options."""
    server = mongod.Mongod(tmp_path / "mongod", free_port())
    mongod.create_root(server)  # plaintext, before TLS is turned on (as the image's first start)
    server.extra = mongod_options(files)
    server.start()
    return server


def test_mongodb_required_serves_verified_tls_refuses_plaintext_and_keeps_the_agent(tmp_path: Path) -> None:
    files = tls.make_files(tmp_path / "tls")
    server = start_tls_mongod(tmp_path, files)
    try:
        assert tls.probe(server.port, "", files.ca_file).verified  # the CA and the Service name
        assert not tls.probe(server.port, "", files.ca_file, name="other-rw.ns.svc").verified
        # pymongo verifies the CA; it checks the address it dials (127.0.0.1), which no certificate names.
        with server.client(tls=True, tlsCAFile=str(files.ca_file), tlsAllowInvalidHostnames=True) as c:
            assert c.admin.command("ping")["ok"] == 1.0
        with server.client() as plain, pytest.raises(PyMongoError):
            plain.admin.command("ping")
        # The agent as the pod runs it (--engine-tls).
        agent = make_driver(Engine.MONGODB.value, dataclasses.replace(server.engine_config(), tls=True))
        assert agent.status().healthy
        agent.ensure_database("shop", 1)
        agent.ensure_user("app", "app-pw-1", [Grant(database="shop", privileges=[Privilege.READ_WRITE])])
    finally:
        server.stop()


# --- a renewal, served without a restart: the agent has the engine re-read its files --------------------


async def renewed_without_restart(
    engine: Engine,
    config: EngineConfig,
    files: tls.TLSFiles,
    proc: subprocess.Popen[bytes],
    port: int,
    protocol: str,
    owner: str = "",
) -> None:
    """Run the real agent app watching ``files`` (as in the pod: --engine-tls-dir), renew them in place,
    and wait until the engine serves the new certificate; the server process ``proc`` is the same."""
    pid = proc.pid
    driver = make_driver(engine.value, config)
    app = make_app(driver, "tok", engine_tls=EngineTLSFiles(str(files.directory)), engine_tls_interval=0.2)
    runner = web.AppRunner(app)
    await runner.setup()  # starts the watch
    try:
        before = tls.probe(port, protocol, files.ca_file)
        assert before.verified, before.output
        renewed = files.renew(owner or None)
        assert renewed != before.certificate

        def served() -> bool:
            return tls.probe(port, protocol, files.ca_file).certificate == renewed

        deadline = time.monotonic() + DEADLINE
        while not served():
            assert time.monotonic() < deadline, f"{engine} still serves the old certificate"
            await asyncio.sleep(0.3)
    finally:
        await runner.cleanup()
    assert proc.pid == pid and proc.poll() is None


async def test_mariadb_serves_a_renewed_certificate_after_the_agent_s_flush_ssl(tmp_path: Path) -> None:
    files = tls.make_files(tmp_path / "tls")
    server = start_mariadb(tmp_path / "m", 1, options=mariadb_options(files))
    try:
        config = dataclasses.replace(server.engine_config(), tls=True)
        await renewed_without_restart(Engine.MARIADB, config, files, server.proc, server.port, "mysql")
    finally:
        server.stop()


async def test_mongod_serves_a_renewed_certificate_after_the_agent_s_rotate_certificates(
    tmp_path: Path,
) -> None:
    files = tls.make_files(tmp_path / "tls")
    server = start_tls_mongod(tmp_path, files)
    try:
        assert server.proc is not None
        config = dataclasses.replace(server.engine_config(), tls=True)
        await renewed_without_restart(Engine.MONGODB, config, files, server.proc, server.port, "")
    finally:
        server.stop()
