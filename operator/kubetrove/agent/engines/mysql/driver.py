"""MySQL driver (8.4, 9.7): MySQL's GTID dialect (uuid:interval sets, SOURCE_AUTO_POSITION, super_read_only).

https://dev.mysql.com/doc/refman/8.4/en/change-replication-source-to.html,
https://dev.mysql.com/doc/refman/8.4/en/show-replica-status.html,
https://dev.mysql.com/doc/refman/8.4/en/gtid-functions.html.
- Position is ``@@gtid_executed`` (a GTID SET, only partially ordered: comparison is the operator's
  job in ``datastores/mysql/gtid.py``); the received set is ``Retrieved_Gtid_Set``.
- Fencing is ``super_read_only`` (it implies ``read_only`` and also stops SUPER/CONNECTION_ADMIN
  accounts); unfencing clears both.
- ``GET_SOURCE_PUBLIC_KEY = 1``: the default caching_sha2_password needs the source's RSA key when the
  replication channel is not TLS (a replication account that never logged in has no cached hash).
- An empty member is cloned from its source before it replicates, an errant one when the operator asks
  for a rebuild (``start_rebuild``, ``clone.py``).
All of it runs against real 9.7.4 and 8.0.31 servers (tests/integration/test_agent_mysql.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from kubetrove.agent.engines.base import BadRequest, Conflict, DriverError, EngineUnavailable
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mysql import clone
from kubetrove.agent.engines.mysql_family.driver import Cursor, MySQLFamilyDriver, client_tls, normalize_gtid
from kubetrove.agent.protocol import Engine, RebuildReply, Status

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_INTERVALS = r"(:\d+(-\d+)?)+"
_TAGGED = rf"{_UUID}((:[A-Za-z_][A-Za-z0-9_]{{0,31}})?{_INTERVALS})+"  # 8.4 tagged GTIDs: uuid:tag:1-5
GTID_SET = re.compile(rf"({_TAGGED})(,{_TAGGED})*")


def validate_gtid_set(value: str) -> str:
    """Return the normalized GTID set, or raise BadRequest (400) if it is not one."""
    normalized = normalize_gtid(value)
    if normalized and not GTID_SET.fullmatch(normalized):
        raise BadRequest(f"not a MySQL GTID set: {value!r}")
    return normalized


class MySQLDriver(MySQLFamilyDriver):
    """EngineDriver for MySQL 8.4 LTS."""

    engine = Engine.MYSQL
    SHOW_REPLICA_STATUS = "SHOW REPLICA STATUS"
    FIELDS: ClassVar[Mapping[str, str]] = {
        "io_running": "Replica_IO_Running",
        "sql_running": "Replica_SQL_Running",
        "source_host": "Source_Host",
        "source_port": "Source_Port",
        "lag": "Seconds_Behind_Source",
        "received": "Retrieved_Gtid_Set",
    }
    # ER_REPLICA_HAS_MORE_GTIDS_THAN_SOURCE (ER_SLAVE_HAS_MORE_GTIDS_THAN_MASTER before 8.0.26) as the
    # replica's IO thread reports it inside error 1236 (Last_IO_Errno 13114 on 8.0.31 and 9.7.4):
    # "Replica has more GTIDs than the source has, using the source's SERVER_UUID. ..." (older wording:
    # "Slave ... master").
    # https://dev.mysql.com/doc/mysql-errors/8.4/en/server-error-reference.html
    DIVERGED = re.compile(r"(?i)has more GTIDs than the (source|master)")
    POSITION_VARIABLE = "@@gtid_executed"
    CHANGE_SOURCE = (
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST = %s, SOURCE_PORT = %s, SOURCE_USER = %s,"
        " SOURCE_PASSWORD = %s, SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1,"
        " SOURCE_CONNECT_RETRY = 5"
    )
    # Encrypted, not verified (SOURCE_SSL_VERIFY_SERVER_CERT stays 0; mysql_family.driver's docstring).
    # https://dev.mysql.com/doc/refman/8.4/en/change-replication-source-to.html
    CHANGE_SOURCE_TLS = ", SOURCE_SSL = 1"
    # https://dev.mysql.com/doc/refman/8.4/en/alter-instance.html
    RELOAD_TLS = "ALTER INSTANCE RELOAD TLS"
    STOP = "STOP REPLICA"
    STOP_IO = "STOP REPLICA IO_THREAD"
    START = "START REPLICA"
    RESET_ALL = "RESET REPLICA ALL"
    FENCE = ("SET GLOBAL super_read_only = ON",)
    UNFENCE = ("SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF")
    DUMP_COMMANDS = ("Binlog Dump GTID", "Binlog Dump")
    # A killed session waiting for its semi-sync acknowledgement keeps waiting (its client's socket is shut
    # at once: the client gets an error), and SET GLOBAL super_read_only waits behind its commit. So:
    # offline_mode first (no client without CONNECTION_ADMIN can connect or go on:
    # https://dev.mysql.com/doc/refman/8.4/en/server-system-variables.html#sysvar_offline_mode), then the
    # source half of semi-sync off, which releases those commits to clients that are gone; once the
    # fence holds, clients may connect again. Found on real MySQL 9.7 (docs/clustering.md, "Demoting a
    # primary"). If the fence still fails, offline_mode stays ON: a writable server never runs without
    # semi-sync with clients on it.
    RELEASE_KILLED_WAITERS = ("SET GLOBAL offline_mode = ON", "SET GLOBAL rpl_semi_sync_source_enabled = OFF")
    AFTER_RELEASE = ("SET GLOBAL offline_mode = OFF",)

    def __init__(self, config: EngineConfig) -> None:
        super().__init__(config)
        self._rebuild = clone.Rebuild(self, super().set_source)

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        """Refused while a rebuild runs (it replicates from its donor itself when the clone is done)."""
        if self._rebuild.running:
            raise Conflict("a rebuild of this member is running; it replicates from its donor when done")
        super().set_source(host, port, user, password)

    def _provision(self, cur: Cursor, host: str, port: int, user: str, password: str) -> None:
        """An empty member is cloned from its source first (``clone.py`` says why); answers 503 then."""
        if clone.needs_clone(cur) and clone.source_has_transactions(
            host, port, user, password, self.config.connect_timeout, client_tls(self.config)
        ):
            clone.clone_from(cur, host, port, user, password)
            raise EngineUnavailable(
                f"mysql cloned from {host}:{port}; the server restarts to finish the clone"
            )

    def start_rebuild(self, host: str, port: int, user: str, password: str) -> RebuildReply:
        """Re-provision this (fenced) member from host:port by clone, then replicate from it (clone.py)."""
        return self._rebuild.start(host, port, user, password)

    def status(self) -> Status:
        """The family's status, plus the state of a rebuild."""
        found = super().status()
        error = self._rebuild.error
        if not (self._rebuild.running or error):
            return found
        return found.model_copy(update={"rebuilding": self._rebuild.running, "rebuild_error": error})

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """WAIT_FOR_EXECUTED_GTID_SET: 0 once applied (also on a primary), 1 on timeout."""
        gtid_set = validate_gtid_set(position)
        with self._cursor() as cur:
            cur.execute("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS r", (gtid_set, timeout_seconds))
            result = cur.fetchone()["r"]
        if result is None:
            raise DriverError("WAIT_FOR_EXECUTED_GTID_SET returned NULL")
        return int(result) == 0
