"""The engine halves of the failover rig (``cluster_harness.Engine``): MariaDB and PostgreSQL clusters.

MariaDB: members with lossless semi-sync (``servers.mariadb.SEMI_SYNC``), a replication account created
on every member outside the binary log (any member may become the primary), GTID auto-positioning by
the agent. PostgreSQL: a primary with ``synchronous_standby_names = 'ANY 1 (*)'`` and standbys cloned
with pg_basebackup; an ex-primary rejoins through pg_rewind before it starts (docs/clustering.md,
"PostgreSQL": in a pod that is the engine container's start step; here the harness plays it).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import psycopg
import pymysql
from psycopg import sql
from psycopg.conninfo import make_conninfo

from kubetrove.clustering.agent_ops import Replication
from kubetrove.datastores.registry import REGISTRY
from tests.integration.cluster_harness import APP_DB, APP_USER, REPL_USER, Server
from tests.integration.servers import postgresql as pg
from tests.integration.servers.mariadb import MariaDBServer, restart_mariadb, start_mariadb
from tests.integration.servers.mysql import (
    MySQLServer,
    rebuild_mysql,
    restart_mysql,
    start_mysql,
    start_mysql_on,
)

APP_PASSWORD = "app-Secret-1"
TABLE = "CREATE TABLE {db}w (seq {serial} PRIMARY KEY, id BIGINT NOT NULL, pod VARCHAR(16) NOT NULL)"


def app_connection(server: Server) -> Any:
    """The application's pymysql connection (MariaDB and MySQL)."""
    return pymysql.connect(
        host="127.0.0.1",
        port=server.port,
        user=APP_USER,
        password=APP_PASSWORD,
        database=APP_DB,
        autocommit=True,
        connect_timeout=2,
        read_timeout=20,
        write_timeout=20,
    )


class MariaDBEngine:
    """Three (or N) semi-sync MariaDB members."""

    name = "mariadb"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.repl_password = secrets.token_urlsafe(12)
        self.servers: list[MariaDBServer] = []

    def start(self, pods: Sequence[str]) -> dict[str, Server]:
        found: dict[str, Server] = {}
        for index, pod in enumerate(pods):
            server = start_mariadb(self.tmp / pod, index + 1, semi_sync=True)
            self.servers.append(server)
            conn = server.connect()
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin = 0")  # local set-up: not a replicated transaction
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (REPL_USER, self.repl_password))
                cur.execute(f"GRANT REPLICATION SLAVE ON *.* TO `{REPL_USER}`@'%'")
            conn.close()
            found[pod] = cast(Server, server)
        return found

    def replication(self) -> Replication:
        semi = "rpl_semi_sync_master_enabled"
        return Replication(REPL_USER, self.repl_password, on_promote={semi: "ON"}, on_demote={semi: "OFF"})

    def create_table(self, primary: Server) -> None:
        cast(MariaDBServer, primary).query(TABLE.format(db=f"{APP_DB}.", serial="BIGINT AUTO_INCREMENT"))

    def connect(self, server: Server) -> Any:
        return app_connection(server)

    def insert(self, conn: Any, write_id: int, pod: str) -> None:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO w (id, pod) VALUES (%s, %s)", (write_id, pod))

    def ids(self, server: Server) -> list[int]:
        return [int(r[0]) for r in cast(MariaDBServer, server).query(f"SELECT id FROM {APP_DB}.w")]

    def restart(self, pod: str, server: Server, primary: Server | None) -> None:
        restart_mariadb(cast(MariaDBServer, server))

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class MySQLEngine:
    """Three (or N) MySQL 9.7 members with lossless semi-sync, started from the product's option file.

    Each member reads ``render_config({}, clustered=True)`` of the MySQL strategy, as a pod does: GTIDs,
    binary log, both semi-sync plugins with the replica half on (AFTER_SYNC, 1-day timeout), and a fenced
    start (read_only + super_read_only). The source half follows the role (``role_parameters``), applied
    by the loop through the agent, as the operator's clustering runner does.
    """

    name = "mysql"

    def __init__(
        self,
        tmp: Path,
        version: str = "9.7",
        lossless: bool = True,
        restore: Callable[[Path], None] | None = None,
        admin_password: str = "",
    ) -> None:
        """``lossless=False``: asynchronous replication, for builds without the semi-sync and clone
        plugins (8.0.31's generic build): their lines are left out of the rendered file and the role
        parameters are not applied. ``restore``: fills a member's empty data directory before its server
        first starts (a DatabaseCluster's ``restoreFrom``: every member restores the same backup), whose
        admin account has ``admin_password``."""
        self.tmp = tmp
        self.version = version
        self.lossless = lossless
        self.restore = restore
        self.repl_password = secrets.token_urlsafe(12)
        # One admin password for every member, as the pods share the root Secret: a clone copies the
        # donor's accounts, so a cloned member's admin password is the donor's.
        self.admin_password = admin_password or secrets.token_urlsafe(12)
        self.servers: list[MySQLServer] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._kubelet = threading.Thread(target=self._restart_clean_exits, name="kubelet", daemon=True)

    def start(self, pods: Sequence[str]) -> dict[str, Server]:
        config = REGISTRY[self.name].render_config({}, clustered=True)
        if not self.lossless:
            plugins = ("plugin_load_add", "rpl_semi_sync_", "loose_rpl_semi_sync_")
            config = "\n".join(line for line in config.splitlines() if not line.startswith(plugins)) + "\n"
        found: dict[str, Server] = {}
        for index, pod in enumerate(pods):
            if self.restore is not None:
                self.restore(self.tmp / pod / "data")
                server = start_mysql_on(self.tmp / pod, index + 1, self.admin_password, self.version, config)
            else:
                server = start_mysql(
                    self.tmp / pod,
                    index + 1,
                    version=self.version,
                    config=config,
                    password=self.admin_password,
                )
            self.servers.append(server)
            self._local_setup(server)
            found[pod] = cast(Server, server)
        self._kubelet.start()
        return found

    def _restart_clean_exits(self) -> None:
        """The kubelet's part: a member whose mysqld exited by itself with 0 (the shutdown that ends a
        clone when no supervisor can restart it) is started again; a killed one waits for the test."""
        while not self._stopping.wait(0.2):
            with self._lock:
                for server in self.servers:
                    if server.proc.poll() == 0:
                        restart_mysql(server)

    def _local_setup(self, server: MySQLServer) -> None:
        conn = server.connect()
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")  # local set-up: not a replicated transaction
            cur.execute("SET GLOBAL super_read_only = OFF")  # members start fenced, even for the admin
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (REPL_USER, self.repl_password))
            # BACKUP_ADMIN: a member cloning itself from empty uses this account on the donor.
            cur.execute(f"GRANT REPLICATION SLAVE, BACKUP_ADMIN ON *.* TO `{REPL_USER}`@'%'")
            cur.execute("SET GLOBAL super_read_only = ON")
        conn.close()

    def replication(self) -> Replication:
        store = REGISTRY[self.name]
        if not self.lossless:
            return Replication(REPL_USER, self.repl_password)
        return Replication(
            REPL_USER, self.repl_password, store.role_parameters(True), store.role_parameters(False)
        )

    def create_table(self, primary: Server) -> None:
        cast(MySQLServer, primary).query(TABLE.format(db=f"{APP_DB}.", serial="BIGINT AUTO_INCREMENT"))

    def connect(self, server: Server) -> Any:
        return app_connection(server)

    def insert(self, conn: Any, write_id: int, pod: str) -> None:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO w (id, pod) VALUES (%s, %s)", (write_id, pod))

    def ids(self, server: Server) -> list[int]:
        return [int(r[0]) for r in cast(MySQLServer, server).query(f"SELECT id FROM {APP_DB}.w")]

    def restart(self, pod: str, server: Server, primary: Server | None) -> None:
        restart_mysql(cast(MySQLServer, server))

    def rebuild(self, server: Server) -> None:
        """What deleting a member's volume does: an empty, freshly initialized server on the same port."""
        rebuilt = cast(MySQLServer, server)
        with self._lock:
            rebuild_mysql(rebuilt)
            self._local_setup(rebuilt)

    def stop(self) -> None:
        self._stopping.set()
        if self._kubelet.is_alive():
            self._kubelet.join(30)
        for server in self.servers:
            server.stop()


# wal_log_hints: pg_rewind needs it (or data checksums). synchronous_standby_names 'ANY 1 (*)': a commit
# returns only once one standby, any of them, flushed its WAL (synchronous_commit = on), so the standby
# that received the most holds every acknowledged commit; the primary blocks while none acknowledges.
PG_SETTINGS = ("wal_log_hints=on", "synchronous_standby_names=ANY 1 (*)", "wal_keep_size=256MB")


class PostgreSQLEngine:
    """A PostgreSQL primary and streaming standbys."""

    name = "postgresql"

    def __init__(self) -> None:
        self.repl_password = secrets.token_urlsafe(12)
        self.servers: list[pg.PostgreSQLServer] = []

    def start(self, pods: Sequence[str]) -> dict[str, Server]:
        primary = pg.start_postgresql(PG_SETTINGS)
        self.servers.append(primary)
        # Also in the file (standbys clone it): pg_rewind's own crash recovery of a SIGKILLed target runs
        # postgres --single without the servers' -c flags; pg_control records what it ran with (wal_log_hints
        # off: pg_rewind refuses; max_connections 100: a standby with 40 refuses) and without wal_keep_size
        # it recycles the WAL pg_rewind then needs.
        with (primary.data / "postgresql.conf").open("a") as conf:
            for setting in (*PG_SETTINGS, "max_connections=40", "max_wal_senders=5"):
                name, value = setting.split("=", 1)
                conf.write(f"{name} = '{value}'\n")
        with primary.connect() as conn:
            conn.execute("SET synchronous_commit = local")  # no standby exists yet to acknowledge
            conn.execute(
                sql.SQL("CREATE ROLE {} REPLICATION LOGIN PASSWORD {}").format(
                    sql.Identifier(REPL_USER), sql.Literal(self.repl_password)
                )
            )
        found: dict[str, Server] = {pods[0]: cast(Server, primary)}
        for pod in pods[1:]:
            standby = pg.start_standby(primary, PG_SETTINGS)
            self.servers.append(standby)
            found[pod] = cast(Server, standby)
        return found

    def replication(self) -> Replication:
        return Replication(REPL_USER, self.repl_password)

    def create_table(self, primary: Server) -> None:
        cast(pg.PostgreSQLServer, primary).query(TABLE.format(db="", serial="bigserial"), dbname=APP_DB)

    def connect(self, server: Server) -> Any:
        return psycopg.connect(
            host="127.0.0.1",
            port=server.port,
            user=APP_USER,
            password=APP_PASSWORD,
            dbname=APP_DB,
            autocommit=True,
            connect_timeout=2,
        )

    def insert(self, conn: Any, write_id: int, pod: str) -> None:
        conn.execute("INSERT INTO w (id, pod) VALUES (%s, %s)", (write_id, pod))

    def ids(self, server: Server) -> list[int]:
        rows = cast(pg.PostgreSQLServer, server).query("SELECT id FROM w", dbname=APP_DB)
        return [int(r[0]) for r in rows]

    def restart(self, pod: str, server: Server, primary: Server | None) -> None:
        """An ex-primary is rewound onto ``primary``'s timeline and started as its standby."""
        s = cast(pg.PostgreSQLServer, server)
        if primary is not None:
            self._rewind(s, cast(pg.PostgreSQLServer, primary))
        pg.restart_postgresql(s)

    def _rewind(self, server: pg.PostgreSQLServer, primary: pg.PostgreSQLServer) -> None:
        # A promoted server writes its new timeline to pg_control only at its next checkpoint, which
        # runs in the background after promotion; pg_rewind reads the timeline there, and without this
        # would answer "same timeline, no rewind required" for a diverged ex-primary.
        primary.query("CHECKPOINT")
        source = make_conninfo(
            host="127.0.0.1",
            port=str(primary.port),
            user=pg.ADMIN,
            password=primary.password,
            dbname="postgres",
        )
        # pg_rewind runs crash recovery of a SIGKILLed target itself (single-user mode) before rewinding;
        # "no rewind required" (the target never went past the fork point) is a success too.
        done = subprocess.run(
            [str(pg.BIN / "pg_rewind"), "-D", str(server.data), f"--source-server={source}", "--no-sync"],
            capture_output=True,
            user="postgres",
            group="postgres",
            extra_groups=[],
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_rewind failed: {done.stderr.decode(errors='replace')[-2000:]}")
        conninfo = make_conninfo(
            host="127.0.0.1", port=str(primary.port), user=REPL_USER, password=self.repl_password
        )
        signal_file = server.data / "standby.signal"
        signal_file.touch()
        shutil.chown(signal_file, "postgres", "postgres")
        with (server.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"primary_conninfo = '{conninfo}'\n")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
