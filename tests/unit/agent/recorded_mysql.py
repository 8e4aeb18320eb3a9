"""A stand-in for a pymysql connection that answers with RECORDED MySQL 8.4 replies and records the SQL.

No MySQL 8 server can run here, so the MySQL-only statements are verified against the reply formats
the MySQL 8.4 Reference Manual documents:
- SHOW REPLICA STATUS: https://dev.mysql.com/doc/refman/8.4/en/show-replica-status.html (the manual's
  example row: Source_Host 127.0.0.1, Source_Port 13000, both threads "Yes", Seconds_Behind_Source 0);
- gtid_executed: https://dev.mysql.com/doc/refman/8.4/en/replication-options-gtids.html (a GTID set the
  server prints with a newline after each comma);
- WAIT_FOR_EXECUTED_GTID_SET returns 0 on success and 1 on timeout (gtid-functions.html).
Statements are recorded AFTER pymysql's own client-side escaping, exactly as they would go on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pymysql.converters import escape_item, escape_string

UUID_A = "3E11FA47-71CA-11E1-9E33-C80AA9429562"
UUID_B = "24DA1670-0C0C-11E8-8442-00059A3C7B00"
GTID_EXECUTED = f"{UUID_A}:1-5,\n{UUID_B}:1-19"

# The manual's example row, the fields the driver reads (the rest of the 50+ columns omitted).
SHOW_REPLICA_STATUS_ROW: Mapping[str, Any] = {
    "Replica_IO_State": "Waiting for source to send event",
    "Source_Host": "127.0.0.1",
    "Source_User": "root",
    "Source_Port": 13000,
    "Replica_IO_Running": "Yes",
    "Replica_SQL_Running": "Yes",
    "Last_Errno": 0,
    "Last_Error": "",
    "Seconds_Behind_Source": 0,
    "Last_IO_Errno": 0,
    "Last_IO_Error": "",
    "Last_SQL_Errno": 0,
    "Last_SQL_Error": "",
    "Retrieved_Gtid_Set": f"{UUID_A}:1-5",
    "Executed_Gtid_Set": GTID_EXECUTED,
    "Auto_Position": 1,
}


def escape(value: Any) -> str:
    """What ``pymysql.Connection.escape`` does (without a connection): strings, sequences, the rest."""
    if isinstance(value, str):
        return f"'{escape_string(value)}'"
    if type(value) in (tuple, list):
        return "(" + ",".join(escape(item) for item in value) + ")"
    return str(escape_item(value, "utf8mb4"))


Reply = Sequence[Mapping[str, Any]] | Callable[[str], Sequence[Mapping[str, Any]]]


class RecordedConnection:
    """Answers each statement with the rows of the first ``replies`` prefix it starts with (else none)."""

    def __init__(
        self, replies: Mapping[str, Reply] | None = None, errors: Mapping[str, Exception] | None = None
    ):
        self.replies = dict(replies or {})
        self.errors = dict(errors or {})
        self.sent: list[str] = []
        self.closed = False

    def cursor(self) -> RecordedCursor:
        return RecordedCursor(self)

    def close(self) -> None:
        self.closed = True


class RecordedCursor:
    def __init__(self, conn: RecordedConnection) -> None:
        self.conn = conn
        self.rows: list[Mapping[str, Any]] = []

    def __enter__(self) -> RecordedCursor:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def execute(self, query: str, args: Any = None) -> int:
        if args is not None:
            values = args if isinstance(args, tuple | list) else (args,)
            query = query % tuple(escape(v) for v in values)
        self.conn.sent.append(query)
        for prefix, error in self.conn.errors.items():
            if query.startswith(prefix):
                raise error
        for prefix, reply in self.conn.replies.items():
            if query.startswith(prefix):
                self.rows = list(reply(query) if callable(reply) else reply)
                return len(self.rows)
        self.rows = []
        return 0

    def fetchone(self) -> Mapping[str, Any] | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Mapping[str, Any]]:
        return self.rows
