"""No password the agent sets reaches an engine's logs: real MariaDB (binary log, general log, error log)
and real PostgreSQL (server log with every statement logged), each password searched for byte for byte.

Each test also checks that the statements DID reach the log (a positive control), so it cannot pass by
grepping an empty or wrong file; and that the account logs in with the password (the hash is right).
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from kubetrove.agent.protocol import Grant, Privilege
from tests.integration.conftest import StartAgent
from tests.integration.servers.mariadb import MariaDBServer
from tests.integration.servers.mysql import MySQLServer
from tests.integration.servers.postgresql import ADMIN, start_postgresql


def hostile_password() -> str:
    """A password with quotes, a backslash and non-ASCII, around a unique marker to search for."""
    return f"q'\"\\-ü-{secrets.token_hex(8)}-Ω"


def leaks(files: list[Path], password: str) -> list[str]:
    """Files holding the password (its UTF-8 bytes, or just its random core) anywhere in their bytes."""
    core = password.split("-")[2].encode()
    return [str(f) for f in files if password.encode() in f.read_bytes() or core in f.read_bytes()]


async def test_mariadb_binlog_and_logs_hold_no_password(
    mariadb_factory: Callable[[], MariaDBServer], start_agent: StartAgent
) -> None:
    server = mariadb_factory()
    general = server.base / "general.log"
    server.query("SET GLOBAL general_log_file = %s", (str(general),))
    server.query("SET GLOBAL log_output = 'FILE'")
    server.query("SET GLOBAL general_log = ON")
    agent = (await start_agent("mariadb", server.engine_config())).client
    await agent.ensure_database("vault")
    first, second = hostile_password(), hostile_password()
    grants = [Grant(database="vault", privileges=[Privilege.READ_WRITE])]
    assert (await agent.ensure_user("keeper", first, grants)).detail == "created"
    server.connect("keeper", first.encode()).close()  # bytes: pymysql would encode a str as latin-1
    assert (await agent.ensure_user("keeper", second, grants)).detail == "updated"  # a rotation
    server.connect("keeper", second.encode()).close()
    server.query("FLUSH BINARY LOGS")

    binlogs = sorted(server.base.glob("binlog.[0-9]*"))
    logs = [*binlogs, general, server.log]
    everything = b"".join(f.read_bytes() for f in logs)
    assert b"CREATE USER" in everything and b"ALTER USER" in everything  # both were logged...
    assert b"IDENTIFIED BY PASSWORD '*" in b"".join(f.read_bytes() for f in binlogs)  # ...as hashes
    assert leaks(logs, first) == [] and leaks(logs, second) == []


async def test_mysql_binlog_holds_no_password(mysql: MySQLServer, start_agent: StartAgent) -> None:
    """MySQL gets the plaintext (IDENTIFIED BY) and rewrites the statement before its binary log, to
    the plugin's hash (IDENTIFIED WITH 'caching_sha2_password' AS '...'): checked, not assumed."""
    agent = (await start_agent("mysql", mysql.engine_config())).client
    await agent.ensure_database("vault")
    first, second = hostile_password(), hostile_password()
    grants = [Grant(database="vault", privileges=[Privilege.READ])]
    await agent.ensure_user("keeper", first, grants)
    await agent.ensure_user("keeper", second, grants)
    mysql.query("FLUSH BINARY LOGS")
    binlogs = sorted(mysql.base.glob("binlog.[0-9]*"))  # --log-bin=<base>/binlog (servers/mysql.py)
    everything = b"".join(f.read_bytes() for f in binlogs)
    assert b"CREATE USER 'keeper'" in everything and b"ALTER USER 'keeper'" in everything
    assert b"IDENTIFIED WITH 'caching_sha2_password' AS " in everything
    assert leaks([*binlogs, mysql.log], first) == [] and leaks([*binlogs, mysql.log], second) == []


async def test_postgresql_server_log_holds_no_password(start_agent: StartAgent) -> None:
    # log_statement=all: stricter than the catalog's ddl; every statement the agent sends is in the log.
    server = start_postgresql(settings=("log_statement=all", "log_min_error_statement=error"))
    try:
        state = server.base / "state"  # the pod's state directory (start.py STATE_DIR), the engine's own
        state.mkdir()
        shutil.chown(state, "postgres", "postgres")
        config = dataclasses.replace(
            server.engine_config(), options={"demoted_marker": str(state / "rejoin")}
        )
        agent = (await start_agent("postgresql", config)).client
        await agent.ensure_database("vault")
        first, second, replication = hostile_password(), hostile_password(), hostile_password()
        grants = [Grant(database="vault", privileges=[Privilege.READ_WRITE])]
        assert (await agent.ensure_user("keeper", first, grants)).detail == "created"
        server.connect("keeper", first, dbname="vault").close()
        assert (await agent.ensure_user("keeper", second, grants)).detail == "updated"
        server.connect("keeper", second, dbname="vault").close()
        stored = server.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'keeper'")[0][0]
        assert stored.startswith("SCRAM-SHA-256$4096:")
        # The replication password has no hashed form: it goes to a passfile, primary_conninfo names it.
        await agent.set_source("127.0.0.1", 5432, ADMIN, replication)  # not a standby: a rejoin is asked
        passfile = state / "replication.pgpass"
        assert passfile.stat().st_mode & 0o777 == 0o600 and passfile.owner() == "postgres"
        escaped = replication.replace("\\", "\\\\")  # libpq's password file escapes backslashes
        assert passfile.read_text() == f"127.0.0.1:5432:*:{ADMIN}:{escaped}\n"

        log = server.log.read_bytes()
        assert b'CREATE ROLE "keeper" LOGIN PASSWORD' in log and b'ALTER ROLE "keeper"' in log
        assert b"PASSWORD 'SCRAM-SHA-256$4096:" in log
        assert leaks([server.log], first) == [] and leaks([server.log], second) == []
        # The reload logs 'parameter "primary_conninfo" changed to ...': the passfile's path, no password.
        assert f"passfile={passfile}".encode() in log
        assert leaks([server.log, state / "rejoin"], replication) == []
    finally:
        server.stop()
