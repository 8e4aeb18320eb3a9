"""The agent's HTTP kit, shared by the app factory (``server``) and every route group (``routes*``).

A leaf under them: it imports no route module and not the server, so route groups never import back up.
It holds the application context (``AgentContext`` under ``CONTEXT``), reply building (``reply``,
``error_response``, ``read_body``), the request's secret memory (``remember_secret``) and the readiness
answer of a pod being restored (``restore_not_ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel

from kubetrove.agent import auth
from kubetrove.agent.backup.restore_gate import RestoreGate
from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import EngineBundle
from kubetrove.agent.logs import Redactor
from kubetrove.agent.metrics import AgentMetrics
from kubetrove.agent.protocol import ErrorCode, ErrorReply

M = TypeVar("M", bound=BaseModel)
# A route group registers its routes (and any startup/shutdown hooks) on the app; the app factory is
# handed the groups it serves (``server.build_app``), as a router is handed its handlers.
RouteGroup = Callable[[web.Application], None]


@dataclass(frozen=True)
class AgentContext:
    """What the handlers need: the driver, its engine's bundle, the token source, metrics, the redactor."""

    driver: EngineDriver
    bundle: EngineBundle  # everything else the agent knows of the driver's engine
    token: auth.TokenSource
    metrics: AgentMetrics
    redactor: Redactor
    restore_gate: RestoreGate | None = None  # spec.restoreFrom: gates /readyz until the restore is done
    tls: auth.ServerTLS | None = None  # HTTPS: re-loaded by the app; may require client certificates
    engine_tls: auth.EngineTLSFiles | None = None  # spec.tls: the engine re-reads them when they change
    engine_tls_interval: float = 10.0  # how often the agent looks (seconds)


CONTEXT = web.AppKey("kubetrove_agent", AgentContext)
# Secrets seen in this request (passwords in bodies), redacted from the log until the request is logged.
SECRETS = web.RequestKey("kubetrove_secrets", list)


def background(
    run: Callable[[], Coroutine[Any, Any, None]], name: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A ``cleanup_ctx`` entry running ``run()`` as a task while the app runs (cancelled at its cleanup)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return lifetime


def context(request: web.Request) -> AgentContext:
    """The app's context."""
    return request.app[CONTEXT]


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """A protocol model as a JSON response."""
    return web.Response(status=status, text=model.model_dump_json(), content_type="application/json")


def error_response(status: int, error: ErrorCode, detail: str = "") -> web.Response:
    """An ``ErrorReply`` JSON response."""
    return reply(ErrorReply(error=error, detail=detail), status)


async def read_body(request: web.Request, model: type[M]) -> M:
    """Parse the JSON body into ``model``; an empty body means the model's defaults."""
    raw = await request.read()
    return model.model_validate_json(raw) if raw.strip() else model.model_validate({})


def remember_secret(request: web.Request, secret: str) -> None:
    """Redact ``secret`` from every log line until this request has been logged."""
    context(request).redactor.add(secret)
    request.setdefault(SECRETS, []).append(secret)


def restore_not_ready(request: web.Request) -> web.Response | None:
    """A 503 naming the restore's state while it is not done, else None (no restore, or done).

    Only the state: this answers the unauthenticated ``/readyz``, and the detail may quote a tool's or
    the engine's words (hosts, users) or the store's location; it is served behind the token at
    ``GET /v1/restore``, which the operator reads."""
    gate = context(request).restore_gate
    if gate is None or gate.ready:
        return None
    state = gate.progress.state.value
    return error_response(503, ErrorCode(f"restore_{state}"), f"restore {state}; GET /v1/restore says why")
