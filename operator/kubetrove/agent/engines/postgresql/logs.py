"""PostgreSQL's server log as the agent reads it: the logging collector's CSV files (pure parsing).

kubetrove's configuration writes the log as CSV (``log_destination = 'csvlog'``) into hourly files
(``datastores/postgresql/strategy.py``, LOG_SETTINGS). Each record is one CSV row (a message may hold
newlines inside its quotes); the columns are those of
https://www.postgresql.org/docs/current/runtime-config-logging.html#RUNTIME-CONFIG-LOGGING-CSVLOG
(PostgreSQL 13 has 24, 14 and later 26: only the first 22 are read here).

- A slow statement (``log_min_duration_statement``) is a LOG record ``duration: 12.345 ms  statement:
  SELECT ...`` (``execute <name>:``, ``parse <name>:``, ``bind <name>:`` for the extended protocol).
  When ``log_statement`` already wrote the statement (``statement: ...`` or ``execute <name>: ...``),
  the duration record is ``duration: 12.345 ms`` alone: its text is that of the session's last such
  record (same ``session_id``). The ``parameters: $1 = ...`` DETAIL of a slow statement is not served
  (a bound parameter may be a password, and no redaction can recognise it).
- Every other record is the error log; ``level`` is its ``error_severity`` (LOG, WARNING, ERROR, FATAL,
  PANIC...), and the failing statement (``query`` column) follows the message as ``STATEMENT: ...``.
- ``log_time`` is read in UTC (``log_timezone = 'UTC'``); a record whose time carries another zone name
  has ``time`` None (an abbreviation such as CET names no offset the agent can trust).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubetrove.agent.protocol import ErrorLogEntry, SlowQuery

# A session whose statements no log setting writes out: log_statement (the catalog allows ``ddl``/``all``),
# a failed statement (log_min_error_statement), a slow or sampled one (the duration and sampling settings,
# PostgreSQL 13+). https://www.postgresql.org/docs/15/runtime-config-logging.html
UNLOGGED_SESSION = (
    "SET log_statement = 'none'",
    "SET log_min_error_statement = 'panic'",
    "SET log_min_duration_statement = -1",
    "SET log_min_duration_sample = -1",
    "SET log_transaction_sample_rate = 0",
)
# Whether the server writes the CSV files at all (both are restart-only settings).
CSV_LOGGING = (
    "SELECT current_setting('logging_collector') AS collector,"
    " current_setting('log_destination') AS destination"
)
# The log files, newest first: what pg_ls_logdir() lists (superuser or pg_monitor), CSV ones only.
LOG_FILES = (
    "SELECT current_setting('log_directory') || '/' || name AS path, size, modification"
    " FROM pg_ls_logdir() WHERE name LIKE '%.csv' ORDER BY modification DESC, name DESC"
)
# The last ``length`` bytes of a file from ``offset`` (superuser: a path outside PGDATA); NULL when the
# file went away since it was listed. Binary: a window may start inside a multi-byte character.
READ_WINDOW = "SELECT pg_read_binary_file(%s, %s, %s, true) AS data"
# How much of the log one request reads, newest first: the agent's memory limit is 256Mi
# (render/agent_sidecar.py), and a text copy plus the parsed rows take several times the bytes.
READ_BUDGET = 8 * 1024 * 1024
# The first window read at the end of a file, grown fourfold while it may miss entries (driver._file_tail).
FIRST_WINDOW = 256 * 1024

_COLUMNS = 22
LOG_TIME, USER, DATABASE, SESSION, SEVERITY, SQLSTATE, MESSAGE, DETAIL, HINT, QUERY = (
    0, 1, 2, 5, 11, 12, 13, 14, 15, 19,
)  # fmt: skip
# A record starts at a line beginning with its log_time: where a window cut into the file, the first
# such line is the first whole record.
_RECORD_START = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.MULTILINE)
_DURATION = re.compile(
    r"^duration: (?P<ms>\d+(?:\.\d+)?) ms"
    r"(?:  (?P<verb>statement|(?:execute|parse|bind) [^:]*): (?P<text>.*))?$",
    re.DOTALL,
)
# What log_statement writes before the statement runs (its duration record then has no text).
_LOGGED = re.compile(r"^(?P<verb>statement|execute [^:]*): (?P<text>.*)$", re.DOTALL)
_PARAMETERS = "parameters: "  # the DETAIL of a statement's bound values (log_parameter_max_length)
_TIME = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (?P<zone>\S+)$")


@dataclass(frozen=True)
class Record:
    """One CSV row of the server log, reduced to what the agent serves."""

    time: datetime | None
    user: str | None
    database: str | None
    session: str
    severity: str
    sqlstate: str
    message: str
    detail: str
    hint: str
    query: str


def writes_csv(collector: str, destination: str) -> bool:
    """Whether ``logging_collector`` and ``log_destination`` ("stderr,csvlog") make the CSV files."""
    return collector == "on" and "csvlog" in {part.strip() for part in destination.split(",")}


def older(modification: datetime, since: datetime | None) -> bool:
    """Whether a file last written at ``modification`` holds nothing at or after ``since``: its records
    are no newer than its last write, and pg_ls_logdir() gives that in whole seconds (stat's mtime)."""
    return since is not None and modification + timedelta(seconds=1) <= since


def log_time(value: str) -> datetime | None:
    """``2026-12-07 01:50:00.123 UTC`` as an aware UTC time; None for another zone or no time."""
    match = _TIME.match(value.strip())
    if match is None or match["zone"] not in ("UTC", "GMT", "+00", "Z"):
        return None
    return datetime.fromisoformat(match["at"]).replace(tzinfo=UTC)


def window_text(data: bytes, cut: bool) -> str:
    """The whole records of a window of a file: when ``cut`` (it starts inside the file), from the first
    line that starts a record; invalid UTF-8 (a character cut at the window's start) is replaced."""
    if cut:
        start = _RECORD_START.search(data)
        data = data[start.start() :] if start else b""
    return data.decode("utf-8", "replace")


def records(text: str) -> Iterator[Record]:
    """The records of ``text`` (whole CSV rows), in file order; a short or broken row is skipped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        try:
            row = next(reader)
        except (StopIteration, csv.Error):  # the end, or bytes that are no CSV (a NUL)
            return
        if len(row) < _COLUMNS:  # a last record the collector is still writing comes out short
            continue
        yield Record(
            time=log_time(row[LOG_TIME]),
            user=row[USER] or None,
            database=row[DATABASE] or None,
            session=row[SESSION],
            severity=row[SEVERITY],
            sqlstate=row[SQLSTATE],
            message=row[MESSAGE],
            detail=row[DETAIL],
            hint=row[HINT],
            query=row[QUERY],
        )


def split(rows: Iterator[Record]) -> tuple[list[SlowQuery], list[ErrorLogEntry]]:
    """The slow statements and the error log entries of ``rows`` (file order kept; no time: no slow)."""
    slow: list[SlowQuery] = []
    errors: list[ErrorLogEntry] = []
    last_statement: dict[str, str] = {}  # session -> its last "statement: ..." text (log_statement)
    for rec in rows:
        duration = _DURATION.match(rec.message) if rec.severity == "LOG" else None
        if duration is None:
            logged = _LOGGED.match(rec.message) if rec.severity == "LOG" else None
            if logged is not None:
                last_statement[rec.session] = _query(logged["verb"], logged["text"])
            errors.append(error_entry(rec))
            continue
        if duration["text"] is not None:
            text: str | None = _query(duration["verb"], duration["text"])
        else:
            text = last_statement.get(rec.session)
        if rec.time is None or text is None:
            continue
        slow.append(
            SlowQuery(
                time=rec.time,
                duration_seconds=float(duration["ms"]) / 1000,
                user=rec.user,
                database=rec.database,
                query=text,
            )
        )
    return slow, errors


def _query(verb: str, text: str) -> str:
    """A statement as served: the simple protocol's text alone, else ``execute <name>: text``."""
    return text if verb == "statement" else f"{verb}: {text}"


def error_entry(rec: Record) -> ErrorLogEntry:
    """A record as an error log entry: ``[SQLSTATE] message`` (00000 left out), then DETAIL, HINT and
    the failing STATEMENT as the server's own stderr lines show them. A ``parameters: $1 = ...`` DETAIL
    is left out: bound values may be secrets no redaction recognises."""
    detail = "" if rec.detail.startswith(_PARAMETERS) else rec.detail
    parts = [rec.message if rec.sqlstate in ("", "00000") else f"[{rec.sqlstate}] {rec.message}"]
    parts += [
        f"{label}: {value}"
        for label, value in (("DETAIL", detail), ("HINT", rec.hint), ("STATEMENT", rec.query))
        if value
    ]
    return ErrorLogEntry(time=rec.time, level=rec.severity, message="\n".join(parts))
