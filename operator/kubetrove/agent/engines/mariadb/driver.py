"""MariaDB driver: MariaDB's GTID dialect (domain-server-seq lists, MASTER_USE_GTID=slave_pos).

https://mariadb.com/kb/en/gtid/ and https://mariadb.com/kb/en/change-master-to/.
- Position is ``@@gtid_current_pos``: a list with one ``domain-server-seq`` per replication domain.
- A replica positions itself with ``gtid_slave_pos``. Before CHANGE MASTER we set it to
  ``@@gtid_current_pos``: for a fresh replica both are empty (it starts from the beginning of the
  primary's binlog); for a demoted primary it records the transactions it wrote itself, which
  ``gtid_slave_pos`` would otherwise miss (it would then re-fetch them: duplicate-key errors).
- Passwords are hashed HERE, never sent: MariaDB writes ``CREATE/ALTER USER`` to the binary log (and to
  the general and slow logs when on) exactly as received, so ``IDENTIFIED BY '<plaintext>'`` would sit on
  every member's volume and in every backup of the binlog. ``IDENTIFIED BY PASSWORD '*<hash>'`` sets the
  same mysql_native_password account (https://mariadb.com/kb/en/create-user/#identified-by-password).
- Fencing is ``read_only``: accounts with READ ONLY ADMIN (or SUPER before 10.11) bypass it, so
  application accounts must not hold it (the agent never grants it).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from kubetrove.agent.engines.base import BadRequest, DriverError, Unsupported
from kubetrove.agent.engines.mysql_family.driver import Cursor, MySQLFamilyDriver
from kubetrove.agent.protocol import Engine, ErrorLogEntry

GTID_LIST = re.compile(r"(\d+-\d+-\d+)(,\d+-\d+-\d+)*")


def parse_gtid_list(value: str) -> dict[int, int]:
    """``'0-1-100,1-2-5'`` -> ``{0: 100, 1: 5}`` (domain -> seq_no); the server id does not order."""
    value = re.sub(r"\s+", "", value)
    if not value:
        return {}
    if not GTID_LIST.fullmatch(value):
        raise BadRequest(f"not a MariaDB GTID list: {value!r}")
    result: dict[int, int] = {}
    for gtid in value.split(","):
        domain, _server, seq = (int(part) for part in gtid.split("-"))
        result[domain] = max(seq, result.get(domain, 0))
    return result


def native_password_hash(password: str) -> str:
    """mysql_native_password's stored form: ``*`` + upper-case hex SHA1(SHA1(password)), of the UTF-8
    bytes (the agent's connections are utf8mb4, so the server would hash the same bytes).
    https://mariadb.com/kb/en/password/ and https://mariadb.com/kb/en/authentication-plugin-mysql_native_password/
    """
    inner = hashlib.sha1(password.encode(), usedforsecurity=False).digest()
    return "*" + hashlib.sha1(inner, usedforsecurity=False).hexdigest().upper()


def reached(current: str, target: str) -> bool:
    """True if every domain of ``target`` is at or behind ``current`` in that domain."""
    have = parse_gtid_list(current)
    return all(have.get(domain, -1) >= seq for domain, seq in parse_gtid_list(target).items())


class MariaDBDriver(MySQLFamilyDriver):
    """EngineDriver for MariaDB 10.6+."""

    engine = Engine.MARIADB
    SHOW_REPLICA_STATUS = "SHOW SLAVE STATUS"
    FIELDS: ClassVar[Mapping[str, str]] = {
        "io_running": "Slave_IO_Running",
        "sql_running": "Slave_SQL_Running",
        "source_host": "Master_Host",
        "source_port": "Master_Port",
        "lag": "Seconds_Behind_Master",
        "received": "Gtid_IO_Pos",
    }
    # "...requested to start from GTID X, which is not in the master's binlog. Since the master's binlog
    # contains GTIDs with higher sequence numbers, it probably means that the slave has diverged..."
    DIVERGED = re.compile(r"slave has diverged")
    POSITION_VARIABLE = "@@gtid_current_pos"
    CHANGE_SOURCE = (
        "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s, MASTER_PASSWORD = %s,"
        " MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5"
    )
    # Encrypted, not verified (module docstring of mysql_family.driver); 11.4+ would otherwise verify by
    # default. https://mariadb.com/kb/en/change-master-to/#master_ssl
    CHANGE_SOURCE_TLS = ", MASTER_SSL = 1, MASTER_SSL_VERIFY_SERVER_CERT = 0"
    RELOAD_TLS = "FLUSH SSL"  # https://mariadb.com/kb/en/flush/ (10.4+)
    STOP = "STOP SLAVE"
    STOP_IO = "STOP SLAVE IO_THREAD"
    START = "START SLAVE"
    RESET_ALL = "RESET SLAVE ALL"
    FENCE = ("SET GLOBAL read_only = ON",)
    UNFENCE = ("SET GLOBAL read_only = OFF",)
    DUMP_COMMANDS = ("Binlog Dump",)

    def _identified_by(self, password: str) -> tuple[str, str]:
        """The hash, never the plaintext: the statement is binlogged as sent (module docstring)."""
        return "IDENTIFIED BY PASSWORD %s", native_password_hash(password)

    def _before_change_source(self, cur: Cursor) -> None:
        cur.execute("SET GLOBAL gtid_slave_pos = @@gtid_current_pos")

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        """Unsupported: MariaDB has no error log table, and its image writes the log to stderr."""
        raise Unsupported(
            "MariaDB has no error log table (performance_schema.error_log is MySQL's) and writes its error"
            " log to the container's stderr: read it with kubectl logs <pod> -c engine"
        )

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """True once ``position`` is in gtid_current_pos (MASTER_GTID_WAIT on a replica)."""
        parse_gtid_list(position)  # 400 before any SQL if malformed
        deadline = time.monotonic() + timeout_seconds
        with self._cursor() as cur:
            # MASTER_GTID_WAIT watches gtid_slave_pos only, so a primary's own writes are checked here.
            cur.execute("SELECT @@gtid_current_pos AS pos")
            if reached(cur.fetchone()["pos"], position):
                return True
            remaining = max(deadline - time.monotonic(), 0.001)
            cur.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS r", (position, remaining))
            result = cur.fetchone()["r"]
        if result is None:
            raise DriverError("MASTER_GTID_WAIT returned NULL (replication not configured?)")
        return int(result) == 0
