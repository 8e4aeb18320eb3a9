"""The engine's logs without a shell: GET /v1/logs/slow and GET /v1/logs/error.

Nobody gets a shell in a database pod, so the agent reads the engine's slow-query log (MySQL and MariaDB:
``mysql.slow_log``; MongoDB: ``system.profile``; PostgreSQL: the duration records of its CSV server log;
Cassandra: MonitoringTask's reports in ``system_views.system_logs``) and error log (MySQL:
``performance_schema.error_log``; MongoDB: ``getLog``; PostgreSQL: the other CSV records; Cassandra: the
other ``system_logs`` rows) for the operator and the user's tools.

Invariants:
- Bounded: the newest ``tail`` entries (``protocol.LogQuery``: 1 to ``LOG_TAIL_MAX``, default
  ``LOG_TAIL_DEFAULT``), oldest first; a bad ``tail`` or ``since`` is a 400 like any bad body.
- Redacted HERE, whatever the engine: other clients' statements hold secrets the agent never knew
  (``CREATE USER ... IDENTIFIED BY '...'``), so every text passes ``Redactor.scrub_statement`` (password
  literals, then every secret the agent knows) before it leaves the agent.
- An engine that logs where the agent cannot read answers 409 when a setting put it there (``log_output``
  without TABLE, which the operator's config always sets; ``performance_schema`` OFF; PostgreSQL's
  collector off; no ``system_logs`` table) or 501 with the reason when it always does (MariaDB's error
  log: stderr only).
- ``?follow=true`` streams NDJSON (``protocol.NDJSON``): the same tail, then each new entry as the engine
  logs it (the driver polled every ``FOLLOW_POLL_SECONDS`` from where ``engine_logs.LogCursor`` stands), until
  the client goes away or ``LOG_FOLLOW_MAX_SECONDS`` pass. Refusals before the first byte are the JSON
  errors above; an engine down mid-stream is polled again, any other refusal then ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TypeVar

from aiohttp import web

from kubetrove.agent import http
from kubetrove.agent.engine_logs import LogCursor, Reader
from kubetrove.agent.engines.base import DriverError, EngineUnavailable
from kubetrove.agent.protocol import (
    LOG_FOLLOW_MAX_SECONDS,
    LOG_TAIL_MAX,
    NDJSON,
    ErrorLogEntry,
    ErrorLogReply,
    LogQuery,
    Paths,
    SlowLogReply,
    SlowQuery,
)

E = TypeVar("E", SlowQuery, ErrorLogEntry)
FOLLOW_POLL_SECONDS = 1.0  # how often a followed log is read again (the driver's bounded read)
log = logging.getLogger("kubetrove.agent")
_STOPPING = web.AppKey("kubetrove_logs_stopping", asyncio.Event)


def _query(request: web.Request) -> tuple[LogQuery, http.AgentContext]:
    return LogQuery.model_validate(dict(request.query)), http.context(request)


def _redacted(ctx: http.AgentContext, entries: Sequence[E], text_field: str, tail: int) -> list[E]:
    """The newest ``tail`` of ``entries`` with their ``text_field`` scrubbed (password literals, secrets)."""
    scrub = ctx.redactor.scrub_statement
    return [e.model_copy(update={text_field: scrub(getattr(e, text_field))}) for e in entries[-tail:]]


async def handle_get_logs_slow(request: web.Request) -> web.StreamResponse:
    """The newest slow statements, redacted; 409 when the engine logs them elsewhere, 501 when it cannot."""
    query, ctx = _query(request)
    if query.follow:
        return await _follow(request, query, ctx.driver.slow_queries, "query")
    entries = await asyncio.to_thread(ctx.driver.slow_queries, query.tail, query.since)
    return http.reply(
        SlowLogReply(engine=ctx.driver.engine, entries=_redacted(ctx, entries, "query", query.tail))
    )


async def handle_get_logs_error(request: web.Request) -> web.StreamResponse:
    """The newest error log entries, redacted; 501 when the agent cannot read the engine's error log."""
    query, ctx = _query(request)
    if query.follow:
        return await _follow(request, query, ctx.driver.error_log, "message")
    entries = await asyncio.to_thread(ctx.driver.error_log, query.tail, query.since)
    return http.reply(
        ErrorLogReply(engine=ctx.driver.engine, entries=_redacted(ctx, entries, "message", query.tail))
    )


async def _follow(
    request: web.Request, query: LogQuery, read: Reader[E], text_field: str
) -> web.StreamResponse:
    """Stream the tail, then new entries, as NDJSON (module docstring)."""
    ctx = http.context(request)
    cursor: LogCursor[E] = LogCursor(floor=query.since)
    # The first read takes as many as a poll does, so that what the tail leaves out is not "new" later.
    first = cursor.fresh(await asyncio.to_thread(read, LOG_TAIL_MAX, query.since))  # refusals: JSON errors
    response = web.StreamResponse(headers={"Content-Type": NDJSON, "Cache-Control": "no-store"})
    await response.prepare(request)
    deadline = asyncio.get_running_loop().time() + LOG_FOLLOW_MAX_SECONDS
    entries = first[-query.tail :]
    try:
        while True:
            if entries:
                lines = "".join(
                    e.model_dump_json() + "\n" for e in _redacted(ctx, entries, text_field, len(entries))
                )
                await response.write(lines.encode())
            gone = request.transport is None or request.transport.is_closing()
            if gone or asyncio.get_running_loop().time() >= deadline:
                break
            with contextlib.suppress(TimeoutError):  # the agent stopping ends every stream at once
                await asyncio.wait_for(request.app[_STOPPING].wait(), FOLLOW_POLL_SECONDS)
                break
            try:
                entries = cursor.fresh(await asyncio.to_thread(read, LOG_TAIL_MAX, cursor.since))
            except EngineUnavailable:  # restarting: the stream outlives it
                entries = []
    except (ConnectionResetError, DriverError) as exc:  # the client left, or the log cannot be read now
        log.info("log stream ended", extra={"path": request.path, "reason": type(exc).__name__})
        return response
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    """Register GET /v1/logs/slow and GET /v1/logs/error on the agent app (streams end at its shutdown)."""
    app.router.add_get(Paths.LOGS_SLOW, handle_get_logs_slow)
    app.router.add_get(Paths.LOGS_ERROR, handle_get_logs_error)
    app[_STOPPING] = asyncio.Event()

    async def stop_following(app: web.Application) -> None:
        app[_STOPPING].set()

    # aiohttp waits for open requests at shutdown (up to run_app's shutdown_timeout): end the streams first.
    app.on_shutdown.append(stop_following)
