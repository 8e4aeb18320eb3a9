"""The engine's logs without a shell: GET /v1/logs/slow and GET /v1/logs/error.

Nobody gets a shell in a database pod, so the agent reads the engine's slow-query log (MySQL and MariaDB:
``mysql.slow_log``; MongoDB: ``system.profile``) and error log (MySQL: ``performance_schema.error_log``;
MongoDB: ``getLog``) for the operator and the user's tools.

Invariants:
- Bounded: the newest ``tail`` entries (``protocol.LogQuery``: 1 to ``LOG_TAIL_MAX``, default
  ``LOG_TAIL_DEFAULT``), oldest first; a bad ``tail`` or ``since`` is a 400 like any bad body.
- Redacted HERE, whatever the engine: other clients' statements hold secrets the agent never knew
  (``CREATE USER ... IDENTIFIED BY '...'``), so every text passes ``Redactor.scrub_statement`` (password
  literals, then every secret the agent knows) before it leaves the agent.
- An engine that logs where the agent cannot read answers 409 when a setting put it there (``log_output``
  without TABLE, which the operator's config always sets; ``performance_schema`` OFF) or 501 with the
  reason when it always does (PostgreSQL, Cassandra, MariaDB's error log: stderr or the engine's files).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from kubetrove.agent import http
from kubetrove.agent.protocol import ErrorLogReply, LogQuery, Paths, SlowLogReply

E = TypeVar("E", bound=BaseModel)


def _query(request: web.Request) -> tuple[LogQuery, http.AgentContext]:
    return LogQuery.model_validate(dict(request.query)), http.context(request)


def _redacted(ctx: http.AgentContext, entries: Sequence[E], text_field: str, tail: int) -> list[E]:
    """The newest ``tail`` of ``entries`` with their ``text_field`` scrubbed (password literals, secrets)."""
    scrub = ctx.redactor.scrub_statement
    return [e.model_copy(update={text_field: scrub(getattr(e, text_field))}) for e in entries[-tail:]]


async def handle_get_logs_slow(request: web.Request) -> web.Response:
    """The newest slow statements, redacted; 409 when the engine logs them elsewhere, 501 when it cannot."""
    query, ctx = _query(request)
    entries = await asyncio.to_thread(ctx.driver.slow_queries, query.tail, query.since)
    return http.reply(
        SlowLogReply(engine=ctx.driver.engine, entries=_redacted(ctx, entries, "query", query.tail))
    )


async def handle_get_logs_error(request: web.Request) -> web.Response:
    """The newest error log entries, redacted; 501 when the agent cannot read the engine's error log."""
    query, ctx = _query(request)
    entries = await asyncio.to_thread(ctx.driver.error_log, query.tail, query.since)
    return http.reply(
        ErrorLogReply(engine=ctx.driver.engine, entries=_redacted(ctx, entries, "message", query.tail))
    )


def add_routes(app: web.Application) -> None:
    """Register GET /v1/logs/slow and GET /v1/logs/error on the agent app."""
    app.router.add_get(Paths.LOGS_SLOW, handle_get_logs_slow)
    app.router.add_get(Paths.LOGS_ERROR, handle_get_logs_error)
