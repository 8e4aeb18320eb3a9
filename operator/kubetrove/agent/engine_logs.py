"""Following the engine's logs: which entries are new (``LogCursor``), and the agent's publisher of them.

The drivers answer "the newest ``tail`` entries at or after ``since``" (``EngineDriver.slow_queries`` and
``error_log``); following a log is polling that with ``since`` moved forward. Two things make the boundary
subtle, and ``LogCursor`` owns both:

- Several entries share a time (a second, or a microsecond under load), so ``since`` = the newest time seen
  returns again the entries already handed on at that time: the cursor remembers those (as a multiset:
  two identical statements in the same instant are two entries) and drops them.
- An entry can be written AFTER a newer one: ``mysql.slow_log.start_time`` is when the statement started,
  so a 5 s statement that began before a 1 s one is logged after it with an older time. The cursor polls
  ``LATE_ENTRY_SECONDS`` before the newest time seen and drops what it handed on already, so such an entry
  still arrives unless it ran longer than that window.

``EngineLogPublisher`` is the agent's background task that writes new entries, redacted, as JSON lines on
its stdout (loggers ``kubetrove.engine.slow`` and ``kubetrove.engine.error``): the Kubernetes convention for
logs, where the engine cannot put them itself (its slow log is a table; some engines' error log is a file).
``kubectl trove logs --slow`` reads them back from the agent container's log (docs/operations.md).

Invariants of the publisher: it starts from "now", the agent's start, not its first successful read
(entries older than that are not replayed, nor the lines without a time its first read finds: they are
the history); nothing is published twice while the agent runs; a log the engine cannot serve
(Unsupported, Conflict) is skipped with one debug line per change, not one per interval; an engine that is
down is read again at the next interval, and what it logged meanwhile is published then.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from kubetrove.agent.engines.base import Conflict, DriverError, EngineDriver, Unsupported
from kubetrove.agent.logs import Redactor
from kubetrove.agent.protocol import (
    ENGINE_ERROR_LOGGER,
    ENGINE_SLOW_LOGGER,
    LOG_TAIL_MAX,
    ErrorLogEntry,
    SlowQuery,
)

E = TypeVar("E", SlowQuery, ErrorLogEntry)
# How long before the newest entry seen an entry may still be written (a statement that started earlier
# and ran longer); polled again every time, so bounded by LOG_TAIL_MAX entries per read.
LATE_ENTRY_SECONDS = 300
log = logging.getLogger("kubetrove.agent")


class LogCursor(Generic[E]):
    """Where a reader of one log is: the ``since`` of its next read, and which entries it handed on."""

    def __init__(self, floor: datetime | None = None) -> None:
        self._floor = floor  # nothing older is ever new (the follower's own ``since``)
        self._newest: datetime | None = None
        self._seen: Counter[str] = Counter()  # the entries handed on that the next read returns again

    @property
    def since(self) -> datetime | None:
        """The ``since`` of the next read: the late-entry window before the newest time seen."""
        if self._newest is None:
            return self._floor
        since = self._newest - timedelta(seconds=LATE_ENTRY_SECONDS)
        return since if self._floor is None else max(since, self._floor)

    def fresh(self, entries: Sequence[E]) -> list[E]:
        """The entries of a read (oldest first) not handed on yet, in order; they count as handed on now."""
        counts: Counter[str] = Counter()
        new: list[E] = []
        for entry in entries:
            if self._floor is not None and entry.time is not None and entry.time < self._floor:
                continue
            key = entry.model_dump_json()
            counts[key] += 1
            if counts[key] > self._seen[key]:
                new.append(entry)
        times = [e.time for e in entries if e.time is not None]
        if times and (self._newest is None or max(times) > self._newest):
            self._newest = max(times)
        # What the next read (at or after ``since``) returns again: entries of the window, and those
        # without a time (the driver cannot filter them: they come back while they are in its tail).
        since = self.since
        kept = {e.model_dump_json() for e in entries if e.time is None or since is None or e.time >= since}
        self._seen = Counter({key: n for key, n in counts.items() if key in kept})
        return new


Reader = Callable[[int, datetime | None], Sequence[E]]


def _slow_fields(engine: str, entry: SlowQuery, scrub: Callable[[str], str]) -> dict[str, Any]:
    return {
        "engine": engine,
        "time": entry.time.isoformat(),
        "duration_seconds": entry.duration_seconds,
        "user": entry.user,
        "database": entry.database,
        "query": scrub(entry.query),
    }


def _error_fields(engine: str, entry: ErrorLogEntry, scrub: Callable[[str], str]) -> dict[str, Any]:
    return {
        "engine": engine,
        "time": entry.time.isoformat() if entry.time else None,
        "level": entry.level,
        "message": scrub(entry.message),
    }


@dataclass
class _Source(Generic[E]):
    """One log the publisher follows: how to read it, where it goes, and where it stands."""

    name: str  # "slow" or "error", for the debug lines
    read: Reader[E]
    logger: logging.Logger
    fields: Callable[[str, E, Callable[[str], str]], dict[str, Any]]
    cursor: LogCursor[E]  # its floor: when the publisher started
    primed: bool = False  # the first read marks the lines without a time as seen, not new
    unsupported: bool = False  # the engine can never serve it: not read again
    state: str = ""  # the last refusal noted (one debug line per change)


class EngineLogPublisher:
    """Writes the engine's new slow-log (and, where the engine cannot, error-log) entries to stdout."""

    def __init__(
        self,
        driver: EngineDriver,
        redactor: Redactor,
        interval_seconds: float,
        started: datetime | None = None,
    ) -> None:
        self.driver = driver
        self.redactor = redactor
        self.interval = interval_seconds
        # "Now" is when the agent started, not its first successful read: the engine may accept
        # connections only later, and what it logs meanwhile is new.
        started = started or datetime.now(UTC)
        slow: _Source[SlowQuery] = _Source(
            "slow",
            driver.slow_queries,
            logging.getLogger(ENGINE_SLOW_LOGGER),
            _slow_fields,
            LogCursor(started),
        )
        self.sources: list[_Source[Any]] = [slow]
        if not driver.error_log_in_container_log:  # else the engine's container log already holds it
            errors: _Source[ErrorLogEntry] = _Source(
                "error",
                driver.error_log,
                logging.getLogger(ENGINE_ERROR_LOGGER),
                _error_fields,
                LogCursor(started),
            )
            self.sources.append(errors)

    async def run(self) -> None:
        """Publish every ``interval`` seconds until cancelled."""
        while True:
            await self.publish_once()
            await asyncio.sleep(self.interval)

    async def publish_once(self) -> int:
        """Read each log once and publish what is new; the number of entries published."""
        published = 0
        for source in self.sources:
            if not source.unsupported:
                published += await self._publish(source)
        return published

    async def _publish(self, source: _Source[E]) -> int:
        try:
            entries = await asyncio.to_thread(source.read, LOG_TAIL_MAX, source.cursor.since)
        except (Unsupported, Conflict) as exc:
            source.unsupported = isinstance(exc, Unsupported)
            self._note(source, f"not published: {exc}")
            return 0
        except DriverError as exc:  # the engine is down or restarting: read again next interval
            self._note(source, f"not read, retried next interval: {exc}")
            return 0
        except Exception as exc:  # an error no driver maps (a bug): said once, the task goes on
            self._note(
                source, f"not read, retried next interval: {type(exc).__name__}: {exc}", logging.WARNING
            )
            return 0
        self._note(source, "")
        new = source.cursor.fresh(entries)
        if not source.primed:  # lines without a time cannot be told from the history: not replayed
            source.primed = True
            new = [e for e in new if e.time is not None]
        engine = str(self.driver.engine)
        for entry in new:
            source.logger.info(source.name, extra={"engine_entry": source.fields(engine, entry, self._scrub)})
        return len(new)

    def _scrub(self, text: str) -> str:
        return self.redactor.scrub_statement(text)

    @staticmethod
    def _note(source: _Source[Any], state: str, level: int = logging.DEBUG) -> None:
        """One line (debug, unless said otherwise) when a log's state changes, not one per interval."""
        if state != source.state:
            source.state = state
            log.log(level, "engine %s log %s", source.name, state or "readable again")
