"""Reading PostgreSQL's server log through SQL: the collector's CSV files, newest first, tail windows.

As the superuser (``pg_ls_logdir``, ``pg_read_binary_file``), so it is the same wherever the agent runs
(https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADMIN-GENFILE). ``logs`` parses what
is read; this module only decides what to read.

Invariants:
- At most ``logs.READ_BUDGET`` bytes are read per call, whatever ``tail`` asks for.
- The reading session logs nothing of its own (``logs.UNLOGGED_SESSION``): with ``log_statement =
  'all'`` each read would otherwise add a record to the log it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg

from kubetrove.agent.engines.base import Conflict, DriverError
from kubetrove.agent.engines.postgresql import logs
from kubetrove.agent.protocol import ErrorLogEntry, SlowQuery

Conn = psycopg.Connection[dict[str, Any]]
E = TypeVar("E", SlowQuery, ErrorLogEntry)
Pick = Callable[[list[SlowQuery], list[ErrorLogEntry]], Sequence[E]]


def _one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> dict[str, Any]:
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise DriverError("postgresql returned no row where one was expected")
    return dict(row)


def at_or_after(when: datetime | None, since: datetime | None) -> bool:
    """Whether an entry at ``when`` is kept for ``since`` (an entry without a time only without since)."""
    return since is None or (when is not None and when >= since)


def server_log(conn: Conn, tail: int, since: datetime | None, pick: Pick[E]) -> list[E]:
    """Read the collector's CSV files newest first (at most ``logs.READ_BUDGET`` bytes in all) until
    ``tail`` entries at or after ``since`` are found; a file last written before ``since`` holds none."""
    chunks: list[list[E]] = []
    found, budget = 0, logs.READ_BUDGET
    for statement in logs.UNLOGGED_SESSION:
        conn.execute(statement)
    on = _one(conn, logs.CSV_LOGGING)
    if not logs.writes_csv(on["collector"], on["destination"]):
        raise Conflict(
            f"postgresql writes no CSV server log (logging_collector={on['collector']},"
            f" log_destination={on['destination']}): kubetrove's configuration sets"
            " logging_collector = on and log_destination = 'csvlog' (docs/operations.md)"
        )
    for f in conn.execute(logs.LOG_FILES).fetchall():
        if found >= tail or budget <= 0 or logs.older(f["modification"], since):
            break
        entries, read = _file_tail(conn, f["path"], int(f["size"]), budget, since, tail - found, pick)
        budget -= read
        chunks.insert(0, entries)
        found += len(entries)
    return [e for chunk in chunks for e in chunk][-tail:]


def _file_tail(
    conn: Conn, path: str, size: int, budget: int, since: datetime | None, need: int, pick: Pick[E]
) -> tuple[list[E], int]:
    """The entries at or after ``since`` at the end of one file, and the bytes read: a window of
    ``logs.FIRST_WINDOW`` bytes, read again four times larger while it may miss some (it holds fewer
    than ``need`` and its first record is not older than ``since``) and the file and ``budget`` allow.
    A reader that polls with ``since`` (follow mode) so reads little more than what is new."""
    window = min(logs.FIRST_WINDOW, budget)
    while True:
        offset = max(0, size - window)
        raw = bytes(_one(conn, logs.READ_WINDOW, (path, offset, budget))["data"] or b"")
        records = list(logs.records(logs.window_text(raw, cut=offset > 0)))
        entries = [e for e in pick(*logs.split(iter(records))) if at_or_after(e.time, since)]
        passed = since is not None and bool(records) and not at_or_after(records[0].time, since)
        if offset == 0 or window >= budget or passed or len(entries) >= need:
            return entries, len(raw)
        window = min(window * 4, budget)
