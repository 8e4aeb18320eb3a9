"""Cassandra's log as the agent reads it: the ``system_views.system_logs`` virtual table (pure parsing).

Cassandra 5.0 keeps the records of its logback ``VirtualTableAppender`` (CASSANDRA-17948) in memory,
newest first, at most ``cassandra.virtual.logs.max.rows`` (50,000) of them, and loses them at a restart.
kubetrove's logback.xml (``hack/images/files/cassandra-conf/logback.xml``) sends the node's INFO and above
there, as to the console, plus MonitoringTask's DEBUG report of slow reads, which the console does not get.
https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/virtualtables.html

- Slow queries: every 5 s (``cassandra.monitoring_report_interval_ms``) MonitoringTask logs, at DEBUG, one
  record listing the reads slower than ``slow_query_log_timeout`` (``<SELECT ...>, time 18 msec - slow
  timeout 10 msec``; ``was slow 3 times: avg/min/max 14/12/16 msec`` when one read repeated) and another
  for reads that timed out (``total time``, ``timed out 2 times``). One SlowQuery per line, at the time of
  its report (when the read ran is not logged), with its longest time. Writes are not monitored.
- The error log is every other record: ``level`` is logback's (ERROR, WARN, INFO), and the message starts
  with the logger's class name, as the console's lines show the source file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubetrove.agent.protocol import ErrorLogEntry, SlowQuery

E = TypeVar("E", SlowQuery, ErrorLogEntry)

MONITORING_LOGGER = "org.apache.cassandra.db.monitoring.MonitoringTask"
# Whether the node has the table at all: only a logback.xml with the appender makes it.
HAS_TABLE = (
    "SELECT table_name FROM system_virtual_schema.tables"
    " WHERE keyspace_name = 'system_views' AND table_name = 'system_logs'"
)
# Newest first, as the table serves them; ``since`` is applied by the node.
RECORDS = "SELECT timestamp, order_in_millisecond, logger, level, message FROM system_views.system_logs"
RECORDS_SINCE = f"{RECORDS} WHERE timestamp >= %s ALLOW FILTERING"
FETCH_SIZE = 500  # rows a page: the agent stops reading once it has ``tail`` entries

_REPORT = re.compile(r"^\d+ operations (?:were slow|timed out) in the last \d+ msecs:$")
_OPERATION = re.compile(
    r"^<(?P<query>.*)>(?:"
    r", time (?P<once>\d+) msec - slow timeout"
    r"|, was slow \d+ times: avg/min/max \d+/\d+/(?P<slowest>\d+) msec - slow timeout"
    r"|, total time (?P<timed_out>\d+) msec, timeout"
    r"| timed out \d+ times, avg/min/max \d+/\d+/(?P<longest>\d+) msec, timeout"
    r") \d+ msec(?:/cross-node)?$"
)
_KEYSPACE = re.compile(r'\bFROM ("(?:[^"]|"")+"|\w+)\.')


def utc(value: datetime) -> datetime:
    """A ``timestamp`` as cassandra-driver returns it (naive, UTC) as an aware time."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def is_slow_report(row: Any) -> bool:
    """Whether a row is MonitoringTask's report of slow or timed-out reads."""
    return bool(row.logger == MONITORING_LOGGER and row.level == "DEBUG")


def slow_queries(row: Any) -> list[SlowQuery]:
    """The reads of one MonitoringTask report, in its order; a line of another form is skipped."""
    lines = str(row.message).split("\n")
    if not lines or not _REPORT.match(lines[0]):
        return []
    out = []
    for line in lines[1:]:
        match = _OPERATION.match(line)
        if match is None:
            continue
        msec = next(int(v) for v in match.group("once", "slowest", "timed_out", "longest") if v is not None)
        keyspace = _KEYSPACE.search(match["query"])
        out.append(
            SlowQuery(
                time=utc(row.timestamp),
                duration_seconds=msec / 1000,
                database=_unquoted(keyspace[1]) if keyspace else None,
                query=match["query"],
            )
        )
    return out


def _unquoted(name: str) -> str:
    """A CQL identifier as written in a query (``ks``, or double-quoted with ``""`` inside) as its name."""
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def error_entry(row: Any) -> ErrorLogEntry:
    """A row as an error log entry: ``[Logger] message`` (the class name of its logger)."""
    return ErrorLogEntry(
        time=utc(row.timestamp),
        level=row.level,
        message=f"[{str(row.logger).rpartition('.')[2]}] {row.message}",
    )


def newest(rows: Iterable[Any], tail: int, entries_of: Callable[[Any], list[E]]) -> list[E]:
    """The newest ``tail`` entries of ``rows`` (the table's rows, newest first), read only until that many
    are found; oldest first in the reply (a report's reads keep their order)."""
    found: list[tuple[tuple[datetime, int], list[E]]] = []
    count = 0
    for row in rows:
        entries = entries_of(row)
        if entries:
            found.append(((row.timestamp, row.order_in_millisecond), entries))
            count += len(entries)
            if count >= tail:
                break
    found.sort(key=lambda item: item[0])
    return [e for _, entries in found for e in entries][-tail:]
