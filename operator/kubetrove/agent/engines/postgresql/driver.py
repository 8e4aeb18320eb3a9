"""PostgreSQL driver (psycopg 3): databases, roles, portable grants, status, fence, promote, standby source.

Manual: https://www.postgresql.org/docs/15/ (functions-admin, sql-grant, sql-alterdefaultprivileges,
runtime-config-replication).
- Names go through ``psycopg.sql.Identifier``, values through parameters; utility statements that take
  no parameters (CREATE ROLE ... PASSWORD, ALTER SYSTEM) get ``sql.Literal``, quoted by libpq.
- Databases the agent creates have CONNECT/TEMPORARY revoked from PUBLIC, so a user sees only what it
  is granted. Grants cover schema ``public``; default privileges cover tables and sequences created
  later by the agent's own role (tables another user creates are covered at the next PUT of the user).
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
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from kubetrove.agent.engines.base import BadRequest, Conflict, DriverError, EngineUnavailable, NotFound
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.postgresql.rejoin import rejoin_files
from kubetrove.agent.protocol import Engine, Grant, ParametersReply, Privilege, Role, Status, TableCheck

DEFAULT_PORT = 5432
LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
POLL = 0.1
SETTLE = 10.0  # seconds a reload may take to reach new sessions
Conn = psycopg.Connection[dict[str, Any]]
# Ordinary tables of user schemas (partitioned parents have no heap of their own) and their B-tree indexes.
AMCHECK_TABLES = (
    "SELECT c.oid, n.nspname, c.relname, array_agg(i.indexrelid) FILTER (WHERE am.amname = 'btree')"
    " AS indexes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_index i ON i.indrelid = c.oid LEFT JOIN pg_class ic ON ic.oid = i.indexrelid"
    " LEFT JOIN pg_am am ON am.oid = ic.relam WHERE c.relkind = 'r'"
    " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
    " GROUP BY 1, 2, 3 ORDER BY 2, 3"
)

# Per object class: (every privilege we manage, what each portable level grants; None = ALL).
_Levels = Mapping[Privilege, tuple[str, ...] | None]
OBJECTS: tuple[tuple[str, str, tuple[str, ...], _Levels], ...] = (
    ("DATABASE", "{db}", ("CONNECT", "TEMPORARY", "CREATE"),
     {Privilege.READ: ("CONNECT",), Privilege.READ_WRITE: ("CONNECT", "TEMPORARY"), Privilege.ADMIN: None}),
    ("SCHEMA", "public", ("USAGE", "CREATE"),
     {Privilege.READ: ("USAGE",), Privilege.READ_WRITE: ("USAGE", "CREATE"), Privilege.ADMIN: None}),
    ("TABLES", "ALL TABLES IN SCHEMA public",
     ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"),
     {Privilege.READ: ("SELECT",), Privilege.READ_WRITE: ("SELECT", "INSERT", "UPDATE", "DELETE"),
      Privilege.ADMIN: None}),
    ("SEQUENCES", "ALL SEQUENCES IN SCHEMA public", ("USAGE", "SELECT", "UPDATE"),
     {Privilege.READ: ("SELECT",), Privilege.READ_WRITE: ("USAGE", "SELECT"), Privilege.ADMIN: None}),
)  # fmt: skip
LEVEL = {Privilege.READ: 1, Privilege.READ_WRITE: 2, Privilege.ADMIN: 3}


def grant_statements(role: str, database: str, level: Privilege | None) -> list[sql.Composed]:
    """The GRANTs, then the REVOKEs, that leave ``role`` with exactly ``level`` in ``database``."""
    grants: list[sql.Composed] = []
    revokes: list[sql.Composed] = []
    who = sql.Identifier(role)
    for kind, target, universe, levels in OBJECTS:
        wanted = levels[level] if level is not None else ()
        on = sql.Identifier(database) if kind == "DATABASE" else sql.SQL(target)
        prefix = (
            sql.SQL("DATABASE ")
            if kind == "DATABASE"
            else sql.SQL("SCHEMA ")
            if kind == "SCHEMA"
            else sql.SQL("")
        )
        extra = () if wanted is None else tuple(p for p in universe if p not in wanted)
        if wanted is None or wanted:
            privs = sql.SQL("ALL" if wanted is None else ", ".join(wanted))
            grants.append(sql.SQL("GRANT {} ON {}{} TO {}").format(privs, prefix, on, who))
        if extra:
            privs = sql.SQL(", ".join(extra))
            revokes.append(sql.SQL("REVOKE {} ON {}{} FROM {}").format(privs, prefix, on, who))
        if kind in ("TABLES", "SEQUENCES"):  # the same for objects created later
            default = sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public ")
            if wanted is None or wanted:
                privs = sql.SQL("ALL" if wanted is None else ", ".join(wanted))
                grants.append(default + sql.SQL("GRANT {} ON {} TO {}").format(privs, sql.SQL(kind), who))
            if extra:
                privs = sql.SQL(", ".join(extra))
                revokes.append(default + sql.SQL("REVOKE {} ON {} FROM {}").format(privs, sql.SQL(kind), who))
    return grants + revokes


def wanted_levels(grants: list[Grant]) -> dict[str, Privilege]:
    """The highest portable privilege wanted per database."""
    levels: dict[str, Privilege] = {}
    for grant in grants:
        for privilege in grant.privileges:
            if grant.database not in levels or LEVEL[privilege] > LEVEL[levels[grant.database]]:
                levels[grant.database] = privilege
    return levels


class PostgreSQLDriver:
    """EngineDriver for PostgreSQL 13+ (tested on 15)."""

    engine = Engine.POSTGRESQL

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
        """CREATE DATABASE unless it exists, with PUBLIC's default CONNECT/TEMPORARY revoked."""
        with self._conn() as conn:
            if name in self._databases(conn):
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
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
        """Create or alter a LOGIN role and make its grants exactly ``grants`` in every user database."""
        levels = wanted_levels(grants)
        with self._conn() as conn:
            databases = self._databases(conn)
            missing = sorted(set(levels) - set(databases))
            if missing:
                raise Conflict(f"database {missing[0]!r} does not exist; create it first")
            created = not self._role_exists(conn, name)
            verb = "CREATE ROLE {} LOGIN PASSWORD {}" if created else "ALTER ROLE {} WITH LOGIN PASSWORD {}"
            conn.execute(sql.SQL(verb).format(sql.Identifier(name), sql.Literal(password)))
        for database in databases:  # privileges inside a database are set from a session in it
            with self._conn(database) as conn:
                for statement in grant_statements(name, database, levels.get(database)):
                    conn.execute(statement)
        return created

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
        """default_transaction_read_only = on for every new session (advisory, see module doc)."""
        self._set_read_only(True)

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
        conninfo = make_conninfo(host=host, port=str(port), user=user, password=password)
        with self._conn() as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(sql.Literal(conninfo)))
        self._set_read_only(True)  # also reloads: a standby's walreceiver reconnects to the new source
        if self._in_recovery():
            return
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
