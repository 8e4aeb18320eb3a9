"""The aiohttp application: middlewares (access log, JSON errors, auth) around the routes in ``routes``.

Middleware order, outermost first: ``_access_log`` sees the final status of every request (including
errors and 401s); ``_json_errors`` turns every exception into ``ErrorReply`` JSON with its status;
``_require_token`` refuses ``/v1`` requests without the right bearer token before any handler runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pydantic
from aiohttp import web

from kubetrove.agent import auth
from kubetrove.agent.engines.base import DriverError, EngineDriver
from kubetrove.agent.engines.bundle import EngineBundle
from kubetrove.agent.engines.registry import bundle_for
from kubetrove.agent.logs import Redactor
from kubetrove.agent.metrics import AgentMetrics
from kubetrove.agent.names import InvalidName
from kubetrove.agent.protocol import ErrorReply

if TYPE_CHECKING:
    from kubetrove.agent.backup.restore_gate import RestoreGate

log = logging.getLogger("kubetrove.agent")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class AgentContext:
    """What the handlers need: the driver, its engine's bundle, the token source, metrics, the redactor."""

    driver: EngineDriver
    bundle: EngineBundle  # everything else the agent knows of the driver's engine
    token: auth.TokenSource
    metrics: AgentMetrics
    redactor: Redactor


CONTEXT = web.AppKey("kubetrove_agent", AgentContext)
SECRETS = web.RequestKey(
    "kubetrove_secrets", list
)  # request key: secrets seen in this request, forgotten after it is logged


def error_response(status: int, error: str, detail: str = "") -> web.Response:
    """An ``ErrorReply`` JSON response."""
    body = ErrorReply(error=error, detail=detail).model_dump_json()
    return web.Response(status=status, text=body, content_type="application/json")


def remember_secret(request: web.Request, secret: str) -> None:
    """Redact ``secret`` from every log line until this request has been logged."""
    request.app[CONTEXT].redactor.add(secret)
    request.setdefault(SECRETS, []).append(secret)


@web.middleware
async def _access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CONTEXT]
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        route = request.match_info.route.resource
        template = route.canonical if route is not None else "unmatched"
        ctx.metrics.requests.labels(template, str(status)).inc()
        # The path holds database/user names, never secrets; headers and bodies are never logged.
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        for secret in request.get(SECRETS, []):
            ctx.redactor.discard(secret)


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    redactor = request.app[CONTEXT].redactor
    try:
        return await handler(request)
    except DriverError as exc:
        return error_response(exc.http_status, exc.code, redactor.scrub(str(exc)))
    except InvalidName as exc:
        return error_response(400, "bad_name", str(exc))
    except pydantic.ValidationError as exc:
        # include_input=False: the refused input may be a password.
        problems = exc.errors(include_input=False, include_url=False)
        detail = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems)
        return error_response(400, "bad_request", detail)
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, body too large
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the agent log")


@web.middleware
async def _require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in auth.PUBLIC_PATHS:
        expected = request.app[CONTEXT].token()
        if not auth.token_matches(request.headers.get("Authorization"), expected):
            return error_response(401, "unauthorized", "missing or wrong bearer token")
    return await handler(request)


def make_app(
    driver: EngineDriver,
    token: str | auth.TokenSource,
    *,
    redactor: Redactor | None = None,
    metrics: AgentMetrics | None = None,
    restore_gate: RestoreGate | None = None,
) -> web.Application:
    """The agent's aiohttp application serving ``driver`` behind ``token``."""
    from kubetrove.agent import (  # routes import this module's helpers
        routes,
        routes_backup,
        routes_restore,
        routes_verify,
    )

    if isinstance(token, str):
        if not token:
            raise ValueError("the agent refuses to serve without a token")
        fixed = token
        token = lambda: fixed  # noqa: E731
    redactor = redactor if redactor is not None else Redactor()
    app = web.Application(middlewares=[_access_log, _json_errors, _require_token], client_max_size=MAX_BODY)
    bundle = bundle_for(driver.engine)
    app[CONTEXT] = AgentContext(driver, bundle, token, metrics or AgentMetrics(driver.engine), redactor)
    routes.add_routes(app)
    routes_backup.add_routes(app)  # POST /v1/backups, GET /v1/backups/{id}
    routes_verify.add_routes(app)  # POST /v1/verify (on a throwaway restored instance)
    routes_restore.add_routes(app, restore_gate)  # GET /v1/restore; gates /readyz while restoring
    app.on_cleanup.append(_close_driver)
    return app


async def _close_driver(app: web.Application) -> None:
    """Close the driver's connections on shutdown (drivers with pools, e.g. Cassandra, expose close())."""
    close = getattr(app[CONTEXT].driver, "close", None)
    if callable(close):
        await asyncio.to_thread(close)
