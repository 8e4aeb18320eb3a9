"""The slow-query log and the error log of MySQL and MariaDB, as the agent reads them: the
queries on a cursor the driver opens, and the rows' parsing (pure).

The slow log is read from ``mysql.slow_log``, which the server fills when ``log_output`` includes TABLE
(the operator's config always sets it: ``datastores/*/strategy.py`` FIXED) and ``slow_query_log`` is ON;
``long_query_time`` is the threshold. https://dev.mysql.com/doc/refman/8.4/en/log-destinations.html and
https://mariadb.com/kb/en/writing-logs-into-tables/. The table's columns are the same on both engines
for what is read here (``sql_text`` is a MEDIUMBLOB on MySQL, MEDIUMTEXT on MariaDB).

The error log is read from ``performance_schema.error_log`` (MySQL 8.0.22+); MariaDB has no such table
and writes its error log to the container's stderr, which the agent cannot read.
https://dev.mysql.com/doc/refman/8.4/en/performance-schema-error-log-table.html

Timestamps: the reading session sets ``time_zone = '+00:00'`` so TIMESTAMP columns come back in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kubetrove.agent.engines.base import Conflict
from kubetrove.agent.protocol import ErrorLogEntry, SlowQuery

# TIMESTAMP's range starts at 1970-01-01 00:00:01 UTC: "no since" is any time after the epoch.
EPOCH = datetime(1970, 1, 1)
# The reading session must not log itself: its own SELECT would be a slow query at long_query_time 0.
QUIET_SESSION = ("SET SESSION long_query_time = 31536000", "SET SESSION time_zone = '+00:00'")
SLOW_LOG = (
    "SELECT start_time, query_time, user_host, db, rows_examined, sql_text FROM mysql.slow_log"
    " WHERE start_time >= %s ORDER BY start_time DESC LIMIT %s"
)
ERROR_LOG = (
    "SELECT LOGGED AS logged, PRIO AS prio, ERROR_CODE AS code, SUBSYSTEM AS subsystem, DATA AS data"
    " FROM performance_schema.error_log WHERE LOGGED >= %s ORDER BY LOGGED DESC LIMIT %s"
)
# user_host: "priv_user[login_user] @ host [ip]" (the account matched, then who logged in).
_USER_HOST = re.compile(r"^\s*(?P<priv>[^\[\s]*)\[(?P<login>[^\]]*)\]")


def text(value: Any) -> str:
    """A column value as text (MySQL returns ``sql_text`` as bytes; invalid UTF-8 is replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def log_output_has_table(log_output: str) -> bool:
    """Whether ``@@log_output`` ("FILE", "TABLE", "FILE,TABLE", "NONE") writes the log tables."""
    return "TABLE" in {part.strip().upper() for part in log_output.split(",")}


def since_utc(since: datetime | None) -> datetime:
    """``since`` as the naive UTC time a '+00:00' session compares TIMESTAMPs with."""
    return EPOCH if since is None else since.astimezone(UTC).replace(tzinfo=None)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _seconds(value: Any) -> float:
    """``query_time`` (TIME(6)) as seconds: pymysql returns a timedelta ("HH:MM:SS.ffffff" otherwise)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    hours, minutes, seconds = text(value).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def login_user(user_host: str) -> str | None:
    """The user who logged in, from ``user_host`` ("app[app] @ [10.0.0.5]"); None when unreadable."""
    match = _USER_HOST.match(user_host)
    if match is None:
        return None
    return match["login"] or match["priv"] or None


def slow_query(row: Mapping[str, Any]) -> SlowQuery:
    """A row of mysql.slow_log (newest-first query, columns as in ``SLOW_LOG``) as a SlowQuery."""
    rows = row.get("rows_examined")
    return SlowQuery(
        time=_utc(row["start_time"]),
        duration_seconds=_seconds(row["query_time"]),
        user=login_user(text(row["user_host"] or "")),
        database=text(row.get("db") or "") or None,
        query=text(row["sql_text"] or ""),
        rows_examined=None if rows is None else int(rows),
    )


def error_entry(row: Mapping[str, Any]) -> ErrorLogEntry:
    """A row of performance_schema.error_log as an ErrorLogEntry ("[MY-010116] [Server] ..." message)."""
    return ErrorLogEntry(
        time=_utc(row["logged"]),
        level=text(row["prio"]),
        message=f"[{text(row['code'])}] [{text(row['subsystem'])}] {text(row['data'])}",
    )


def read_slow_log(cur: Any, engine: str, tail: int, since: datetime | None) -> list[SlowQuery]:
    """The newest ``tail`` rows of mysql.slow_log at or after ``since``, oldest first; Conflict when
    ``log_output`` has no TABLE (the server writes no rows there)."""
    cur.execute("SELECT @@GLOBAL.log_output AS log_output")
    log_output = text(cur.fetchone()["log_output"])
    if not log_output_has_table(log_output):
        raise Conflict(
            f"{engine} writes its slow log to log_output={log_output}, not to mysql.slow_log:"
            " set log_output to include TABLE (kubetrove's configuration does)"
        )
    return [slow_query(row) for row in _read_log_table(cur, SLOW_LOG, tail, since)]


def read_error_log(cur: Any, engine: str, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
    """The newest ``tail`` rows of performance_schema.error_log (MySQL 8.0.22+), oldest first;
    Conflict while the Performance Schema, which holds that table, is off."""
    cur.execute("SELECT @@GLOBAL.performance_schema AS ps")
    if not int(cur.fetchone()["ps"]):
        raise Conflict(
            f"{engine} keeps its error log table in the Performance Schema, which is off:"
            " set the performance_schema parameter to ON (a restart)"
        )
    return [error_entry(row) for row in _read_log_table(cur, ERROR_LOG, tail, since)]


def _read_log_table(cur: Any, query: str, tail: int, since: datetime | None) -> list[Any]:
    """The rows of a newest-first log ``query`` (two %s: since, tail), oldest first, read in UTC by a
    session that logs nothing of its own."""
    for statement in QUIET_SESSION:
        cur.execute(statement)
    cur.execute(query, (since_utc(since), tail))
    return list(reversed(cur.fetchall()))
