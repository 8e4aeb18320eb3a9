"""PostgreSQL driver (psycopg 3): databases, roles, portable grants, status, fence, promote, standby source.

Manual: https://www.postgresql.org/docs/15/ (functions-admin, sql-grant, sql-alterdefaultprivileges,
runtime-config-replication).
- Names go through ``psycopg.sql.Identifier``, values through parameters; utility statements that take
  no parameters (CREATE ROLE ... PASSWORD, ALTER SYSTEM) get ``sql.Literal``, quoted by libpq.
- A password never reaches the server in clear: roles get a SCRAM verifier computed client-side
  (``scram_verifier``), so no server log (statement logging, a failed statement) can hold it.
- Databases the agent creates have CONNECT/TEMPORARY revoked from PUBLIC, so a user sees only what it
  is granted, and CREATE on schema public (PostgreSQL 15's default, also on 13 and 14). Grants cover
  schema ``public`` and hold for tables and sequences any user creates later (``grants.py``).
- Fence = ``ALTER SYSTEM SET default_transaction_read_only = on`` + reload. It is ADVISORY: a session
  may ``SET default_transaction_read_only = off`` itself; it stops applications, not a hostile client.
  The call returns once a new session sees the setting (the reload is asynchronous).
- ``set_source`` writes ``primary_conninfo`` (reloadable since PostgreSQL 13: a standby's WAL receiver
  reconnects to the new source without a restart). A server that is not a standby needs pg_rewind,
  ``standby.signal`` and a restart, which only its engine container can do: in a pod the agent asks
  for it through a file (``rejoin.py``); elsewhere (no ``--demoted-marker``) 409 says so.
- ``promote`` is ``pg_promote()`` (no restart) and forgets any pending rejoin.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from kubetrove.agent.engines.base import (
    BadRequest,
    Conflict,
    DriverError,
    EngineUnavailable,
    NotFound,
)
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.postgresql import grants as g
from kubetrove.agent.engines.postgresql import log_reader, logs
from kubetrove.agent.engines.postgresql.rejoin import rejoin_files
from kubetrove.agent.protocol import (
    Engine,
    ErrorLogEntry,
    Grant,
    ParametersReply,
    Role,
    SlowQuery,
    Status,
    TableCheck,
)

DEFAULT_PORT = 5432
LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
POLL = 0.1
SETTLE = 10.0  # seconds a reload may take to reach new sessions
Conn = psycopg.Connection[dict[str, Any]]
# Refusals of what the caller asked for, answered 400 with the server's own words (never a 500):
# invalid_parameter_value (ALTER SYSTEM SET max_connections = 'abc'), undefined_object (an unknown
# parameter), invalid_text_representation, cant_change_runtime_param, reserved_name (a pg_ role).
# https://www.postgresql.org/docs/15/errcodes-appendix.html
CALLER_ERRORS = frozenset({"22023", "42704", "22P02", "55P02", "42939"})
# Ordinary tables of user schemas (partitioned parents have no heap of their own) and their B-tree indexes.
AMCHECK_TABLES = (
    "SELECT c.oid, n.nspname, c.relname, array_agg(i.indexrelid) FILTER (WHERE am.amname = 'btree')"
    " AS indexes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_index i ON i.indrelid = c.oid LEFT JOIN pg_class ic ON ic.oid = i.indexrelid"
    " LEFT JOIN pg_am am ON am.oid = ic.relam WHERE c.relkind = 'r'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
    " GROUP BY 1, 2, 3 ORDER BY 2, 3"
)


def scram_verifier(conn: Conn, name: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed HERE by libpq (PQencryptPasswordConn: a random
    salt, 4096 iterations, RFC 5802/7677), never the plaintext: the server logs a CREATE/ALTER ROLE that
    fails (log_min_error_statement) and every one under the catalog's ``log_statement: ddl``; a verifier
    is what it stores anyway (https://www.postgresql.org/docs/15/sql-createrole.html, "ENCRYPTED")."""
    try:
        return conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()
    except psycopg.Error as exc:
        raise DriverError(f"postgresql: cannot hash the password: {exc}") from None


class PostgreSQLDriver:
    """EngineDriver for PostgreSQL 13+ (tested on 15)."""

    engine = Engine.POSTGRESQL
    # The logging collector writes the server log to files (datastores/postgresql/strategy.py,
    # LOG_SETTINGS), not to the container's stderr: the agent republishes it.
    error_log_in_container_log = False

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._rejoin = rejoin_files(config)

    @contextmanager
    def _conn(self, dbname: str | None = None) -> Iterator[Conn]:
        try:
            conn: Conn = psycopg.connect(
                host=self.config.host,
                port=self.config.port or DEFAULT_PORT,
                user=self.config.user,
                password=self.config.password,
                dbname=dbname or self.config.database or "postgres",
                connect_timeout=max(2, int(self.config.connect_timeout)),
                autocommit=True,
                row_factory=dict_row,
            )
        except psycopg.OperationalError as exc:
            raise EngineUnavailable(f"cannot connect to postgresql: {str(exc).strip()}") from None
        try:
            yield conn
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise Conflict(f"postgresql is read-only (a standby, or fenced): {exc}") from exc
        except psycopg.OperationalError as exc:
            raise EngineUnavailable(f"postgresql: {exc}") from exc
        except psycopg.Error as exc:
            if exc.sqlstate in CALLER_ERRORS:
                raise BadRequest(f"postgresql refused it ({exc.sqlstate}): {exc}") from None
            raise DriverError(f"postgresql error {exc.sqlstate}: {exc}") from exc
        finally:
            conn.close()

    @staticmethod
    def _one(conn: Conn, query: str | sql.Composed, params: tuple[Any, ...] = ()) -> dict[str, Any]:
        row = conn.execute(query, params).fetchone()
        if row is None:
            raise DriverError("postgresql returned no row where one was expected")
        return dict(row)

    def ping(self) -> None:
        """Raise EngineUnavailable unless the server answers SELECT 1."""
        with self._conn() as conn:
            conn.execute("SELECT 1")

    def reload_tls(self) -> None:
        """SIGHUP: the ssl_* files are read again at every reload.
        https://www.postgresql.org/docs/current/ssl-tcp.html"""
        with self._conn() as conn:
            conn.execute("SELECT pg_reload_conf()")

    def status(self) -> Status:
        """Role from pg_is_in_recovery(), LSN positions, replay lag, read-only, connections."""
        with self._conn() as conn:
            top = self._one(
                conn,
                "SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS recovery,"
                " current_setting('default_transaction_read_only') = 'on' AS fenced,"
                " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS conns",
            )
            common: dict[str, Any] = {
                "engine": self.engine,
                "version": top["version"],
                "read_only": bool(top["recovery"] or top["fenced"]),
                "connections": int(top["conns"]),
            }
            if not top["recovery"]:
                row = self._one(
                    conn,
                    "SELECT pg_current_wal_lsn()::text AS lsn,"
                    " (SELECT count(*) FROM pg_stat_replication) AS n",
                )
                role = Role.PRIMARY if row["n"] else Role.STANDALONE
                failed = self._rejoin.failure() if self._rejoin else None
                return Status(
                    role=role,
                    healthy=failed is None,
                    position=row["lsn"],
                    lag_seconds=0.0,
                    replication_error=f"rejoin failed, rebuild this member: {failed}" if failed else None,
                    # pg_rewind could not make it follow the new primary: errant for decide (I5), so it
                    # is quarantined and reported instead of being asked to rejoin every cycle.
                    diverged=failed is not None,
                    **common,
                )
            row = self._one(
                conn,
                "SELECT pg_last_wal_replay_lsn()::text AS replay, pg_last_wal_receive_lsn()::text AS receive,"
                " CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END AS lag",
            )
            receiver = conn.execute(
                "SELECT status, sender_host, sender_port FROM pg_stat_wal_receiver"
            ).fetchone()
        streaming = receiver is not None and receiver["status"] == "streaming"
        return Status(
            role=Role.REPLICA,
            healthy=streaming,
            position=row["replay"],
            received_position=row["receive"],
            lag_seconds=None if row["lag"] is None else float(row["lag"]),
            source_host=f"{receiver['sender_host']}:{receiver['sender_port']}" if receiver else None,
            replication_running=streaming,
            **common,
        )

    # -- databases --------------------------------------------------------------------------------

    def _databases(self, conn: Conn) -> list[str]:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1"
        ).fetchall()
        return [r["datname"] for r in rows]

    def list_databases(self) -> list[str]:
        """User databases (templates and ``postgres`` excluded), sorted."""
        with self._conn() as conn:
            return self._databases(conn)

    def ensure_database(self, name: str, replication_factor: int) -> bool:
        """CREATE DATABASE unless it exists, with PUBLIC's CONNECT/TEMPORARY and CREATE on public revoked."""
        with self._conn() as conn:
            if name in self._databases(conn):
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        with self._conn(name) as conn:  # only granted users create (so each gets default privileges)
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        return True

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ... WITH (FORCE) (disconnects its sessions); NotFound if missing."""
        with self._conn() as conn:
            if name not in self._databases(conn):
                raise NotFound(f"database {name!r} does not exist")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- users and grants -----------------------------------------------------------------------

    def _role_exists(self, conn: Conn, name: str) -> bool:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is not None

    def ensure_user(self, name: str, password: str, grants: list[Grant]) -> bool:
        """Create or alter a LOGIN role and make its grants exactly ``grants`` in every user database,
        then the default privileges of every database's creators (``grants.py``)."""
        levels = g.wanted_levels(grants)
        with self._conn() as conn:
            databases = self._databases(conn)
            missing = sorted(set(levels) - set(databases))
            if missing:
                raise Conflict(f"database {missing[0]!r} does not exist; create it first")
            created = not self._role_exists(conn, name)
            verb = "CREATE ROLE {} LOGIN PASSWORD {}" if created else "ALTER ROLE {} WITH LOGIN PASSWORD {}"
            verifier = scram_verifier(conn, name, password)
            conn.execute(sql.SQL(verb).format(sql.Identifier(name), sql.Literal(verifier)))
        for database in databases:  # privileges inside a database are set from a session in it
            with self._conn(database) as conn:
                level = levels.get(database)
                if level not in g.CREATOR_LEVELS:  # what it created is no longer its own to write
                    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(name)))
                for statement in g.grant_statements(name, database, level):
                    conn.execute(statement)
                for statement in self._default_privileges(conn):
                    conn.execute(statement)
        return created

    @staticmethod
    def _default_privileges(conn: Conn) -> list[sql.Composed]:
        """What makes this database's default privileges match its grants, for every creator."""
        levels = g.level_of_rows(conn.execute(g.GRANTEES).fetchall())
        owners = conn.execute(g.OWNERS).fetchone()
        if owners is None:
            raise DriverError("postgresql: schema public does not exist in this database")
        creators = g.creators_of(conn.execute(g.CREATORS).fetchall(), owners)
        return g.default_statements(
            creators, levels, g.current_defaults(conn.execute(g.DEFAULT_ACL).fetchall())
        )

    def drop_user(self, name: str) -> None:
        """Reassign and drop what the role owns in every database, then DROP ROLE; NotFound if missing."""
        with self._conn() as conn:
            if not self._role_exists(conn, name):
                raise NotFound(f"user {name!r} does not exist")
            rows = conn.execute("SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate")
            databases = [r["datname"] for r in rows.fetchall()]
        role = sql.Identifier(name)
        for database in databases:
            with self._conn(database) as conn:
                conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        with self._conn() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(role))

    # -- parameters -------------------------------------------------------------------------------

    def apply_parameters(self, parameters: Mapping[str, str]) -> ParametersReply:
        """ALTER SYSTEM SET each parameter and reload; postmaster-context ones need a restart."""
        keys = sorted(k.lower() for k in parameters)
        values = {k.lower(): v for k, v in parameters.items()}
        with self._conn() as conn:
            rows = conn.execute("SELECT name, context FROM pg_settings WHERE name = ANY(%s)", (keys,))
            context = {r["name"]: r["context"] for r in rows.fetchall()}
            for key in keys:
                if key not in context and "." not in key:  # dotted names are extension placeholders
                    raise BadRequest(f"unknown postgresql parameter {key!r}")
            for key in keys:
                ident = sql.Identifier(*key.split("."))
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(ident, sql.Literal(values[key])))
            conn.execute("SELECT pg_reload_conf()")
        restart = [k for k in keys if context.get(k) == "postmaster"]
        return ParametersReply(applied=[k for k in keys if k not in restart], needs_restart=restart)

    # -- replication ------------------------------------------------------------------------------

    def _end_writer_sessions(self) -> int:
        """Terminate every client session but the agent's own on a server that is not a standby; how many.

        Why (docs/clustering.md, "Demoting a primary"): a commit waiting for its synchronous standby is
        released, and ACKNOWLEDGED to its client, as soon as ``synchronous_standby_names`` is emptied,
        which the demotion does right after this fence; the WAL it waited for is what pg_rewind then
        takes away. Terminated instead, its client gets an error (FATAL, "the transaction has already
        committed locally, but might not have been replicated"), never a success. A cancel would not do:
        a cancelled wait returns success with a WARNING
        (https://www.postgresql.org/docs/current/warm-standby.html#SYNCHRONOUS-REPLICATION-HA).
        Walsenders, background workers and the agent's own user's sessions are kept."""
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND usename IS DISTINCT FROM current_user"
            ).fetchall()
        return int(rows[0]["n"]) if rows else 0

    def _set_read_only(self, on: bool) -> None:
        with self._conn() as conn:
            if on:
                conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            else:
                conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
            conn.execute("SELECT pg_reload_conf()")
        want = "on" if on else "off"
        deadline = time.monotonic() + SETTLE
        while True:  # the postmaster applies the reload asynchronously
            with self._conn() as conn:
                if (
                    self._one(conn, "SHOW default_transaction_read_only")["default_transaction_read_only"]
                    == want
                ):
                    return
            if time.monotonic() > deadline:
                raise DriverError(f"default_transaction_read_only did not become {want} after reload")
            time.sleep(POLL)

    def _in_recovery(self) -> bool:
        with self._conn() as conn:
            return bool(self._one(conn, "SELECT pg_is_in_recovery() AS r")["r"])

    def fence(self) -> None:
        """default_transaction_read_only = on for every new session (advisory, see module doc); on a
        server that is not a standby, the client sessions that may wait for a commit's standby end."""
        self._set_read_only(True)
        if not self._in_recovery():
            self._end_writer_sessions()

    def promote(self) -> None:
        """pg_promote() on a standby (waits for it), then clear primary_conninfo and the fence."""
        if self._rejoin:  # a primary must never be rewound at its next start
            self._rejoin.clear()
        if self._in_recovery():
            with self._conn() as conn:
                if not self._one(conn, "SELECT pg_promote(true, 60) AS ok")["ok"]:
                    raise DriverError("pg_promote() did not finish within 60 s")
                conn.execute("ALTER SYSTEM RESET primary_conninfo")
        self._set_read_only(False)

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        """Write primary_conninfo and fence; a non-standby is rewound and restarted by its pod (or 409)."""
        if self._rejoin is not None:  # in a pod: the password in a file, never in a logged setting
            passfile = self._rejoin.write_passfile(host, port, user, password)
            conninfo = make_conninfo(host=host, port=str(port), user=user, passfile=str(passfile))
        else:  # a harness without the pod's state directory: the reload log line holds the password
            conninfo = make_conninfo(host=host, port=str(port), user=user, password=password)
        with self._conn() as conn:
            # primary_conninfo holds the replication password and has no hashed form: this session's
            # statements are kept out of the server log instead (superuser-settable, this session only).
            for statement in logs.UNLOGGED_SESSION:
                conn.execute(statement)
            conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(conninfo)))
        self._set_read_only(True)  # also reloads: a standby's walreceiver reconnects to the new source
        if self._in_recovery():
            return
        self._end_writer_sessions()  # before the demotion empties synchronous_standby_names (see there)
        if self._rejoin is None:
            raise Conflict(
                "primary_conninfo is written, but this server is not a standby: the pod must create "
                "standby.signal and restart PostgreSQL (after pg_rewind if it was a primary)"
            )
        failed = self._rejoin.failure()
        if failed is not None:
            raise Conflict(f"an earlier pg_rewind failed, rebuild this member: {failed}")
        # The engine container stops postgres, rewinds from the source and starts as its standby;
        # until then the server stays fenced (above), and this member is down for a few seconds.
        self._rejoin.ask(conninfo)

    def stop_replication(self) -> None:
        """Clear primary_conninfo on a standby: its WAL receiver stops (a no-op on a primary)."""
        if not self._in_recovery():
            return
        with self._conn() as conn:
            conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
            conn.execute("SELECT pg_reload_conf()")

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """Poll until the replay LSN (standby) or current WAL LSN (primary) reaches ``position``."""
        if not LSN.fullmatch(position):
            raise BadRequest(f"not a PostgreSQL LSN: {position!r}")
        deadline = time.monotonic() + timeout_seconds
        query = (
            "SELECT pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
            " ELSE pg_current_wal_lsn() END, %s::pg_lsn) >= 0 AS done"
        )
        with self._conn() as conn:
            while True:
                if self._one(conn, query, (position,))["done"]:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL)

    # -- the engine's logs (GET /v1/logs/*) -------------------------------------------------------

    def slow_queries(self, tail: int, since: datetime | None) -> list[SlowQuery]:
        """The server log's ``duration: ... ms`` records (``log_min_duration_statement``), newest ``tail``."""
        with self._conn() as conn:
            return log_reader.server_log(conn, tail, since, lambda slow, _errors: slow)

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        """Every other record of the server log (``level`` = its severity), newest ``tail``."""
        with self._conn() as conn:
            return log_reader.server_log(conn, tail, since, lambda _slow, errors: errors)

    # -- verification of a restored backup ------------------------------------------------------

    def check_tables(self, databases: list[str]) -> tuple[str, list[TableCheck]]:
        """amcheck over every table of ``databases``: ``verify_heapam`` on the heap (and its TOAST), then
        ``bt_index_check(heapallindexed)`` on each B-tree index (https://www.postgresql.org/docs/15/amcheck.html).

        Meant for a throwaway restored server: it runs ``CREATE EXTENSION IF NOT EXISTS amcheck`` in each
        database. Where amcheck is not installed the tool is "none" and only the stats scan reads the rows.
        """
        with self._conn() as conn:
            available = "SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'"
            if conn.execute(available).fetchone() is None:
                return "none", []
        out: list[TableCheck] = []
        for db in databases:
            with self._conn(db) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                out += [self._check_table(conn, db, row) for row in conn.execute(AMCHECK_TABLES).fetchall()]
        return "amcheck", out

    @staticmethod
    def _check_table(conn: Conn, db: str, row: dict[str, Any]) -> TableCheck:
        name, bad = f"{db}.{row['nspname']}.{row['relname']}", []
        try:
            heap = conn.execute(
                "SELECT blkno, offnum, msg FROM verify_heapam(%s::oid::regclass, check_toast => true)"
                " LIMIT 3",
                (row["oid"],),
            ).fetchall()
            bad += [f"block {h['blkno']} item {h['offnum']}: {h['msg']}" for h in heap]
            for index in row["indexes"] or []:
                conn.execute("SELECT bt_index_check(%s::oid::regclass, true)", (index,))
        except psycopg.Error as exc:  # corruption is reported as an error (SQLSTATE XX001/XX002)
            bad.append(f"{exc.sqlstate}: {str(exc).strip()}")
        return TableCheck(table=name, ok=not bad, message="; ".join(bad))
