"""MongoDB's slow operations as the agent reads them: the ``system.profile`` collection of each database.

mongod records an operation there when the profiler's level says so: level 1 (``operationProfiling.mode:
slowOp``) for operations slower than ``slowms`` (``operationProfiling.slowOpThresholdMs``), level 2
(``all``) for every one. https://www.mongodb.com/docs/manual/reference/database-profiler/. Each database
has its own capped collection, so the agent reads the newest of each and keeps the newest overall.

Pure (``find_command`` builds the command, ``slow_query`` reads one document); unit-tested on literals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubetrove.agent.protocol import SlowQuery

PROFILE = "system.profile"
# The databases whose profile is read: every database but the server's own bookkeeping.
SKIPPED_DATABASES = frozenset({"local", "config"})
# Fields of a profiled command that are the driver's session plumbing, not the statement.
_PLUMBING = frozenset({"lsid", "txnNumber"})


def find_command(database: str, tail: int, since: datetime | None) -> dict[str, Any]:
    """The ``find`` on ``database``'s profile: its newest ``tail`` entries (one batch), the agent's own
    reads of the profile left out."""
    query: dict[str, Any] = {"ns": {"$ne": f"{database}.{PROFILE}"}}
    if since is not None:
        query["ts"] = {"$gte": since}
    return {
        "find": PROFILE,
        "filter": query,
        "sort": {"ts": -1},
        "limit": tail,
        "batchSize": tail,
        "singleBatch": True,
    }


def statement(entry: Mapping[str, Any]) -> str:
    """The profiled operation as JSON text: its ``command`` (or the legacy ``query``) without plumbing."""
    command = entry.get("command", entry.get("query"))
    if not isinstance(command, Mapping):
        return str(entry.get("op", ""))
    shown = {k: v for k, v in command.items() if k not in _PLUMBING and not str(k).startswith("$")}
    return json.dumps(shown, default=str, ensure_ascii=False)


def slow_query(entry: Mapping[str, Any]) -> SlowQuery:
    """One ``system.profile`` document as a SlowQuery (``ts`` is when the operation ended)."""
    ts: datetime = entry["ts"]
    examined = entry.get("docsExamined")
    return SlowQuery(
        time=ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC),
        duration_seconds=float(entry.get("millis", 0)) / 1000,
        user=str(entry.get("user") or "") or None,
        database=str(entry.get("ns", "")).partition(".")[0] or None,
        query=statement(entry),
        rows_examined=None if examined is None else int(examined),
    )


def newest(entries: list[SlowQuery], tail: int) -> list[SlowQuery]:
    """The newest ``tail`` of ``entries`` (from several databases), oldest first."""
    return sorted(entries, key=lambda e: e.time)[-tail:]
