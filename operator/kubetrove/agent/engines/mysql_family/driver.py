"""What the MySQL and MariaDB drivers share (pymysql): connections, databases, users, grants, status.

The two engines differ where their replication differs, and only there; the subclasses in ``mysql/driver.py``
and ``mariadb/driver.py`` supply those statements and field names as class attributes (``Dialect`` hooks).

Invariants:
- Values (user names as account strings, passwords, hosts, positions) are always query PARAMETERS
  (pymysql escapes them client-side); identifiers are validated by ``agent.names`` and quoted here with
  ``quote_ident`` (backticks doubled) as the second fence.
- A connection per call: pymysql connections are not thread-safe, and routes run drivers in threads.
- Nothing is written to a read-only server (a replica, or a fenced primary): the agent's account
  usually holds a privilege that bypasses ``read_only``, and a local write on a replica is an errant
  transaction that breaks GTID failover. Such calls raise Conflict (409) instead.
- With ``config.tls`` (the server may refuse plaintext TCP: ``require_secure_transport``) every
  connection is TLS, unverified: the agent's are to its own pod's loopback, where the certificate names
  no address; replication asks its source for TLS (``CHANGE_SOURCE_TLS``), encrypted but not verified
  (the source is named by whatever the operator passes, and a user's certificate may not name members).
- Grants are exact: a PUT grants what is wanted (GRANT is idempotent), then revokes only what is no
  longer wanted, so a wanted privilege never disappears, even for a moment.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pymysql
import pymysql.cursors

from kubetrove.agent.engines.base import (
    BadRequest,
    Conflict,
    DriverError,
    EngineUnavailable,
    NotFound,
)
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mysql_family import fencing, logs
from kubetrove.agent.engines.mysql_family.names import SYSTEM_SCHEMAS
from kubetrove.agent.protocol import (
    Engine,
    ErrorLogEntry,
    Grant,
    ParametersReply,
    Privilege,
    Role,
    SlowQuery,
    Status,
    TableCheck,
)

DEFAULT_PORT = 3306


def client_tls(config: EngineConfig) -> ssl.SSLContext | None:
    """pymysql's ``ssl``: unverified TLS when the engine serves TLS (module docstring), else None."""
    if not config.tls:
        return None
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# https://dev.mysql.com/doc/refman/8.4/en/privileges-provided.html (database-level privileges).
READ = ("SELECT", "SHOW VIEW")
READ_WRITE = (
    *READ,
    *("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES"),
    *("CREATE TEMPORARY TABLES", "LOCK TABLES", "CREATE VIEW", "TRIGGER", "EXECUTE"),
)
ADMIN = "ALL PRIVILEGES"
PRIVILEGES: Mapping[Privilege, tuple[str, ...]] = {Privilege.READ: READ, Privilege.READ_WRITE: READ_WRITE}
LEVEL = {Privilege.READ: 1, Privilege.READ_WRITE: 2, Privilege.ADMIN: 3}
READ_ONLY_ERRORS = frozenset({1290, 1836})  # ER_OPTION_PREVENTS_STATEMENT, ER_READ_ONLY_MODE
CONNECTION_ERRORS = frozenset({1040, 1045, 2002, 2003, 2006, 2013})
UNKNOWN_VARIABLE, READ_ONLY_VARIABLE = 1193, 1238
# The source refused to stream: ER_MASTER_FATAL_ERROR_READING_BINLOG (1236) is what MariaDB's replica
# reports; MySQL 8.0+ wraps the source's 1236 in its own ER_SERVER_SOURCE_FATAL_ERROR_READING_BINLOG
# (13114, "Got fatal error 1236 from source when reading data from binary log: ..."), seen on real 8.0.31
# and 9.7.4 servers. https://dev.mysql.com/doc/mysql-errors/8.4/en/server-error-reference.html
FATAL_READING_BINLOG = frozenset({1236, 13114})
# Refusals of what the caller asked for, answered 400 with the server's own words (never a 500):
# ER_WRONG_ARGUMENTS, ER_LOCAL_VARIABLE (a session-only variable in SET GLOBAL), ER_WRONG_VALUE_FOR_VAR,
# ER_WRONG_TYPE_FOR_VAR, ER_NOT_VALID_PASSWORD (a password policy component refuses the password).
CALLER_ERRORS = frozenset({1210, 1228, 1231, 1232, 1819})
CHECK_OK = frozenset({"OK", "Table is already up to date"})  # CHECK TABLE's status texts of a sound table
Cursor = Any  # pymysql's DictCursor, or a recorded fake in unit tests


def quote_ident(name: str) -> str:
    """Quote an identifier with backticks, doubling any backtick inside it."""
    return "`" + name.replace("`", "``") + "`"


def grant_schema(name: str) -> str:
    """A database name as GRANT reads it: ``_`` and ``%`` are wildcards there, so escape them."""
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def grantee(name: str) -> str:
    """The GRANTEE string information_schema uses for the account ``name@%``."""
    return f"'{name}'@'%'"


def wanted_levels(grants: list[Grant]) -> dict[str, Privilege]:
    """The highest portable privilege wanted per database (admin > readWrite > read)."""
    levels: dict[str, Privilege] = {}
    for grant in grants:
        for privilege in grant.privileges:
            current = levels.get(grant.database)
            if current is None or LEVEL[privilege] > LEVEL[current]:
                levels[grant.database] = privilege
    return levels


def coerce(value: str) -> int | float | str:
    """A parameter value as SET GLOBAL wants it: numeric variables refuse quoted numbers."""
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d+", value):
        return float(value)
    return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class MySQLFamilyDriver:
    """EngineDriver for the MySQL family; subclasses set the replication dialect below."""

    engine: Engine
    # No log_error in kubetrove.cnf: mysqld and mariadbd write their error log to stderr, their default
    # (https://dev.mysql.com/doc/refman/8.4/en/error-log-destination-configuration.html).
    error_log_in_container_log = True
    SHOW_REPLICA_STATUS: ClassVar[str]
    # SHOW ... STATUS column names: io_running, sql_running, source_host, lag, received.
    FIELDS: ClassVar[Mapping[str, str]]
    # Which 1236 texts mean "this replica holds transactions the source never had" (not, e.g., "the
    # source purged the binlogs this replica needs", also 1236 but not errant).
    DIVERGED: ClassVar[re.Pattern[str]]
    POSITION_VARIABLE: ClassVar[str]  # @@gtid_current_pos / @@gtid_executed
    CHANGE_SOURCE: ClassVar[str]  # four %s: host, port, user, password
    CHANGE_SOURCE_TLS: ClassVar[str]  # appended to CHANGE_SOURCE when the engine serves TLS
    RELOAD_TLS: ClassVar[str]  # re-reads ssl_cert/ssl_key/ssl_ca for new connections
    STOP: ClassVar[str]
    STOP_IO: ClassVar[str]
    START: ClassVar[str]
    RESET_ALL: ClassVar[str]
    FENCE: ClassVar[tuple[str, ...]]
    UNFENCE: ClassVar[tuple[str, ...]]
    DUMP_COMMANDS: ClassVar[tuple[str, ...]]  # processlist COMMAND of a connected replica
    # See fencing.FencePlan (empty: killing the sessions suffices).
    RELEASE_KILLED_WAITERS: ClassVar[tuple[str, ...]] = ()
    AFTER_RELEASE: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    # -- connections and error mapping ---------------------------------------------------------

    def _connect(self) -> Any:
        return pymysql.connect(
            host=self.config.host,
            port=self.config.port or DEFAULT_PORT,
            user=self.config.user,
            password=self.config.password,
            connect_timeout=self.config.connect_timeout,
            autocommit=True,
            charset="utf8mb4",
            cursorclass=pymysql.cursors.DictCursor,
            ssl=client_tls(self.config),
        )

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        try:
            conn = self._connect()
        except pymysql.err.MySQLError as exc:
            raise EngineUnavailable(f"cannot connect to {self.engine}: {exc.args[-1]}") from None
        try:
            with conn.cursor() as cur:
                yield cur
        except pymysql.err.MySQLError as exc:
            raise self._map_error(exc) from exc
        finally:
            conn.close()

    def _map_error(self, exc: pymysql.err.MySQLError) -> DriverError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        message = _text(exc.args[-1]) if exc.args else str(exc)
        if code in READ_ONLY_ERRORS:
            return Conflict(f"{self.engine} is read-only (a replica, or fenced): {message}")
        if code in CALLER_ERRORS:
            return BadRequest(f"{self.engine} refused it: {message}")
        if code in CONNECTION_ERRORS:
            return EngineUnavailable(f"{self.engine}: {message}")
        return DriverError(f"{self.engine} error {code}: {message}")

    def _require_writable(self, cur: Cursor) -> None:
        cur.execute("SELECT @@read_only AS ro")
        if int(cur.fetchone()["ro"]):
            raise Conflict(f"{self.engine} is read-only (a replica, or fenced): writes go to the primary")

    # -- health and status ----------------------------------------------------------------------

    def ping(self) -> None:
        """Raise EngineUnavailable unless the engine answers SELECT 1."""
        with self._cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def status(self) -> Status:
        """Role, read-only flag, version, GTID positions, lag and health."""
        with self._cursor() as cur:
            cur.execute(
                f"SELECT @@version AS version, @@read_only AS ro, {self.POSITION_VARIABLE} AS position"
            )
            top = cur.fetchone()
            cur.execute(self.SHOW_REPLICA_STATUS)
            replica = cur.fetchone()
            cur.execute(
                "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND IN %s",
                (self.DUMP_COMMANDS,),
            )
            replicas = int(cur.fetchone()["n"])
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            threads = cur.fetchone()
        return self._build_status(top, replica, replicas, int(threads["Value"]) if threads else None)

    def _build_status(
        self,
        top: Mapping[str, Any],
        replica: Mapping[str, Any] | None,
        replicas: int,
        connections: int | None,
    ) -> Status:
        f = self.FIELDS
        common: dict[str, Any] = {
            "engine": self.engine,
            "version": _text(top["version"]),
            "read_only": bool(int(top["ro"])),
            "position": normalize_gtid(_text(top["position"] or "")),
            "connections": connections,
        }
        if not replica or not replica.get(f["source_host"]):
            role = Role.PRIMARY if replicas else Role.STANDALONE
            return Status(role=role, healthy=True, lag_seconds=0.0, **common)
        running = replica[f["io_running"]] == "Yes" and replica[f["sql_running"]] == "Yes"
        error = replica.get("Last_IO_Error") or replica.get("Last_SQL_Error") or None
        io_error = _text(replica.get("Last_IO_Error") or "")
        diverged = int(replica.get("Last_IO_Errno") or 0) in FATAL_READING_BINLOG and bool(
            self.DIVERGED.search(io_error)
        )
        lag = replica.get(f["lag"])
        return Status(
            role=Role.REPLICA,
            healthy=running and not error,
            lag_seconds=None if lag is None else float(lag),
            received_position=normalize_gtid(_text(replica.get(f["received"]) or "")),
            source_host=f"{replica[f['source_host']]}:{replica.get(f['source_port'], DEFAULT_PORT)}",
            replication_running=running,
            replication_error=error,
            diverged=diverged,
            **common,
        )

    # -- databases --------------------------------------------------------------------------------

    def list_databases(self) -> list[str]:
        """User databases, system schemas excluded, sorted."""
        with self._cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA")
            return sorted(n for n in (_text(r["name"]) for r in cur.fetchall()) if n not in SYSTEM_SCHEMAS)

    def _database_exists(self, cur: Cursor, name: str) -> bool:
        cur.execute("SELECT 1 AS x FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
        return cur.fetchone() is not None

    def ensure_database(self, name: str, replication_factor: int) -> bool:
        """CREATE DATABASE unless it exists (replication_factor is Cassandra's; ignored)."""
        with self._cursor() as cur:
            if self._database_exists(cur, name):
                return False
            self._require_writable(cur)
            cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote_ident(name)} CHARACTER SET utf8mb4")
            return True

    def drop_database(self, name: str) -> None:
        """DROP DATABASE; NotFound if it does not exist."""
        with self._cursor() as cur:
            if not self._database_exists(cur, name):
                raise NotFound(f"database {name!r} does not exist")
            self._require_writable(cur)
            cur.execute(f"DROP DATABASE {quote_ident(name)}")

    # -- users and grants -----------------------------------------------------------------------

    def _user_exists(self, cur: Cursor, name: str) -> bool:
        cur.execute("SELECT 1 AS x FROM mysql.user WHERE User = %s AND Host = '%%'", (name,))
        return cur.fetchone() is not None

    def ensure_user(self, name: str, password: str, grants: list[Grant]) -> bool:
        """Create or alter ``name@%`` and make its database grants exactly ``grants``."""
        levels = wanted_levels(grants)
        with self._cursor() as cur:
            for database in levels:
                if not self._database_exists(cur, database):
                    raise Conflict(f"database {database!r} does not exist; create it first")
            self._require_writable(cur)
            created = not self._user_exists(cur, name)
            verb = "CREATE" if created else "ALTER"
            clause, secret = self._identified_by(password)
            cur.execute(f"{verb} USER %s@'%%' {clause}", (name, secret))
            self._apply_grants(cur, name, levels)
            return created

    def _identified_by(self, password: str) -> tuple[str, str]:
        """The IDENTIFIED clause (one %s) and its value. MySQL writes CREATE/ALTER USER to its binary log
        with the plugin's hash in place of the plaintext (``IDENTIFIED WITH ... AS '<hash>'``), so the
        plaintext is fine here; MariaDB logs the statement as sent and overrides this."""
        return "IDENTIFIED BY %s", password

    def _apply_grants(self, cur: Cursor, name: str, levels: Mapping[str, Privilege]) -> None:
        cur.execute(
            "SELECT TABLE_SCHEMA AS db, PRIVILEGE_TYPE AS priv FROM information_schema.SCHEMA_PRIVILEGES"
            " WHERE GRANTEE = %s",
            (grantee(name),),
        )
        current: dict[str, set[str]] = {}
        for row in cur.fetchall():
            current.setdefault(_text(row["db"]), set()).add(_text(row["priv"]))
        for database, level in sorted(levels.items()):
            schema = grant_schema(database)
            target = f"{quote_ident(schema)}.*"
            if level is Privilege.ADMIN:
                cur.execute(f"GRANT {ADMIN} ON {target} TO %s@'%%'", (name,))
                continue
            wanted = PRIVILEGES[level]
            cur.execute(f"GRANT {', '.join(wanted)} ON {target} TO %s@'%%'", (name,))
            extra = sorted(current.get(schema, set()) - set(wanted))
            if extra:
                cur.execute(f"REVOKE {', '.join(extra)} ON {target} FROM %s@'%%'", (name,))
        kept = {grant_schema(d) for d in levels}
        for schema in sorted(set(current) - kept):
            cur.execute(f"REVOKE ALL PRIVILEGES ON {quote_ident(schema)}.* FROM %s@'%%'", (name,))

    def drop_user(self, name: str) -> None:
        """DROP USER ``name@%``; NotFound if it does not exist."""
        with self._cursor() as cur:
            if not self._user_exists(cur, name):
                raise NotFound(f"user {name!r} does not exist")
            self._require_writable(cur)
            cur.execute("DROP USER %s@'%%'", (name,))

    # -- parameters -------------------------------------------------------------------------------

    def apply_parameters(self, parameters: Mapping[str, str]) -> ParametersReply:
        """SET GLOBAL each parameter; read-only variables are reported as needing a restart."""
        applied: list[str] = []
        restart: list[str] = []
        with self._cursor() as cur:
            for key, value in sorted(parameters.items()):
                try:
                    # ``key`` passed names.validate_parameter: [A-Za-z0-9_.] only.
                    cur.execute(f"SET GLOBAL {key} = %s", (coerce(value),))
                except pymysql.err.MySQLError as exc:
                    code = exc.args[0] if exc.args else 0
                    if code == READ_ONLY_VARIABLE:
                        restart.append(key)
                        continue
                    if code == UNKNOWN_VARIABLE:
                        raise BadRequest(f"unknown {self.engine} variable {key!r}") from None
                    raise
                applied.append(key)
        return ParametersReply(applied=applied, needs_restart=restart)

    # -- replication ------------------------------------------------------------------------------

    def _before_change_source(self, cur: Cursor) -> None:
        """Dialect hook run after STOP and before CHANGE ... SOURCE (MariaDB aligns gtid_slave_pos)."""

    def _provision(self, cur: Cursor, host: str, port: int, user: str, password: str) -> None:
        """Dialect hook run after fencing, before replication is configured (MySQL clones an empty member)."""

    def _mark_demoted(self, demoted: bool) -> None:
        """Create or remove the demoted marker (``options["demoted_marker"]``), if this engine has one.

        Written BEFORE any SQL: fencing a primary whose server is down must still make its next start a
        replica's start (docs/clustering.md, "Restarting as a replica"). Removed on promotion before the
        member takes writes, so a crash of the new primary restarts it as the primary it still is.
        """
        marker = self.config.options.get("demoted_marker")
        if not marker:
            return
        path = Path(marker)
        if demoted:
            path.touch()
        else:
            path.unlink(missing_ok=True)

    def _fence(self, cur: Cursor) -> None:
        """Refuse writes, ending the client sessions of a server that took writes (``fencing``)."""
        fencing.fence(
            cur,
            fencing.FencePlan(
                engine=self.engine,
                agent_user=self.config.user,
                fence=self.FENCE,
                dump_commands=self.DUMP_COMMANDS,
                release_killed_waiters=self.RELEASE_KILLED_WAITERS,
                after_release=self.AFTER_RELEASE,
            ),
        )

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        """Fence, then replicate from host:port with GTID auto-positioning."""
        self._mark_demoted(True)
        with self._cursor() as cur:
            self._fence(cur)
            self._provision(cur, host, port, user, password)
            cur.execute(self.STOP)
            self._before_change_source(cur)
            change = self.CHANGE_SOURCE + (self.CHANGE_SOURCE_TLS if self.config.tls else "")
            cur.execute(change, (host, port, user, password))
            cur.execute(self.START)

    def reload_tls(self) -> None:
        """The flavour's statement re-reads the server's TLS files (new connections get them)."""
        with self._cursor() as cur:
            cur.execute(self.RELOAD_TLS)

    def stop_replication(self) -> None:
        """Stop the receiver (IO) thread only: what was received still gets applied."""
        with self._cursor() as cur:
            cur.execute(self.STOP_IO)

    def promote(self) -> None:
        """Stop and forget replication, then accept writes."""
        with self._cursor() as cur:
            cur.execute(self.STOP)
            cur.execute(self.RESET_ALL)
            self._mark_demoted(False)
            for statement in self.UNFENCE:
                cur.execute(statement)

    def fence(self) -> None:
        """Refuse writes from clients (and restart as a replica from now on)."""
        self._mark_demoted(True)
        with self._cursor() as cur:
            self._fence(cur)

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """Block until ``position`` is applied; each dialect has its own wait function."""
        raise NotImplementedError

    # -- the engine's logs (GET /v1/logs/*) -------------------------------------------------------

    def slow_queries(self, tail: int, since: datetime | None) -> list[SlowQuery]:
        """The newest ``tail`` rows of mysql.slow_log at or after ``since``, oldest first (``logs``)."""
        with self._cursor() as cur:
            return logs.read_slow_log(cur, self.engine, tail, since)

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        """The newest ``tail`` rows of performance_schema.error_log, oldest first (``logs``)."""
        with self._cursor() as cur:
            return logs.read_error_log(cur, self.engine, tail, since)

    # -- verification of a restored backup ------------------------------------------------------

    def check_tables(self, databases: list[str]) -> tuple[str, list[TableCheck]]:
        """``CHECK TABLE`` every base table of ``databases`` (https://mariadb.com/kb/en/check-table/).

        One statement per table so a failure names its table. A table is fine when no row has
        Msg_type ``error`` and every ``status`` row says OK (engines that cannot check say so in a
        ``note``, which is not a failure).
        """
        out: list[TableCheck] = []
        with self._cursor() as cur:
            cur.execute(
                "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS name FROM information_schema.TABLES"
                " WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA IN %s ORDER BY 1, 2",
                (tuple(databases) or ("",),),
            )
            for row in list(cur.fetchall()):
                db, name = _text(row["db"]), _text(row["name"])
                cur.execute(f"CHECK TABLE {quote_ident(db)}.{quote_ident(name)}")
                replies = [(_text(r["Msg_type"]).lower(), _text(r["Msg_text"])) for r in cur.fetchall()]
                bad = [text for kind, text in replies if kind == "error"]
                bad += [text for kind, text in replies if kind == "status" and text not in CHECK_OK]
                out.append(TableCheck(table=f"{db}.{name}", ok=not bad, message="; ".join(bad)))
        return "CHECK TABLE", out


def normalize_gtid(value: str) -> str:
    """A GTID set/list without the whitespace and newlines servers put after commas."""
    return re.sub(r"\s+", "", value)
