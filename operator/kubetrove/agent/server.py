"""The app factory: middlewares (access log, JSON errors, auth) around the route groups it is handed.

``build_app`` knows no route: ``agent.app.make_app`` hands it the groups (``routes``, ``routes_backup``,
``routes_verify``, ``routes_restore``), which share only the leaf ``agent.http`` with it.

Middleware order, outermost first: ``_access_log`` sees the final status of every request (including
errors and 401s); ``_json_errors`` turns every exception into ``ErrorReply`` JSON with its status;
``_require_token`` refuses ``/v1`` requests without a verified client certificate (when the agent has a
client CA) or without the right bearer token, before any handler runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import pydantic
from aiohttp import web

from kubetrove.agent import auth
from kubetrove.agent.engines.base import DriverError, TLSReloadDriver
from kubetrove.agent.http import CONTEXT, SECRETS, AgentContext, RouteGroup, background, error_response
from kubetrove.agent.names import InvalidName
from kubetrove.agent.protocol import TOKEN_HEADER, ErrorCode

log = logging.getLogger("kubetrove.agent")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 1024 * 1024
# aiohttp's own refusals, by status: the codes they always had (derived from the reason phrase).
_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.REQUEST_ENTITY_TOO_LARGE,
}


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
        return error_response(400, ErrorCode.BAD_NAME, str(exc))
    except pydantic.ValidationError as exc:
        # include_input=False: the refused input may be a password.
        problems = exc.errors(include_input=False, include_url=False)
        detail = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems)
        return error_response(400, ErrorCode.BAD_REQUEST, detail)
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, body too large
        if exc.status < 400:
            raise
        return error_response(exc.status, _HTTP_CODES.get(exc.status, ErrorCode.HTTP_ERROR), exc.reason)
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, ErrorCode.INTERNAL, "internal error; see the agent log")


@web.middleware
async def _require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in auth.PUBLIC_PATHS:
        tls = request.app[CONTEXT].tls
        if tls is not None and tls.verifies_clients and not _client_certificate(request):
            return error_response(401, ErrorCode.UNAUTHORIZED, "client certificate required")
        expected = request.app[CONTEXT].token()
        if not auth.token_matches(request.headers.get(TOKEN_HEADER), expected):
            return error_response(401, ErrorCode.UNAUTHORIZED, "missing or wrong bearer token")
    return await handler(request)


def _client_certificate(request: web.Request) -> bool:
    """True if the client presented a certificate the handshake verified against the client CA.

    ``getpeercert()`` is a dict only for a verified certificate; None when none was presented (or the
    connection is not TLS at all: an app that requires client certificates then refuses every request)."""
    transport = request.transport
    return transport is not None and bool(transport.get_extra_info("peercert"))


def build_app(context: AgentContext, route_groups: Sequence[RouteGroup]) -> web.Application:
    """The agent's aiohttp application around ``context``, serving the routes of ``route_groups``."""
    app = web.Application(middlewares=[_access_log, _json_errors, _require_token], client_max_size=MAX_BODY)
    app[CONTEXT] = context
    for add_routes in route_groups:
        add_routes(app)
    app.on_cleanup.append(_close_driver)
    if context.tls is not None:
        # Re-load the TLS files when they change (``auth.ServerTLS.watch``) while the app runs.
        app.cleanup_ctx.append(background(context.tls.watch, "kubetrove-agent-tls-reload"))
    if context.engine_tls is not None and isinstance(context.driver, TLSReloadDriver):
        app.cleanup_ctx.append(
            background(partial(_reload_engine_tls, context), "kubetrove-agent-engine-tls-reload")
        )
    return app


async def _reload_engine_tls(context: AgentContext) -> None:
    """While the app runs: when the engine's TLS files change (a renewal swapped in by the kubelet), have
    the engine re-read them; a failure (the engine down) is logged and tried again at the next look."""
    files, driver = context.engine_tls, context.driver
    assert files is not None
    assert isinstance(driver, TLSReloadDriver)
    while True:
        await asyncio.sleep(context.engine_tls_interval)
        if not files.changed():
            continue
        try:
            await asyncio.to_thread(driver.reload_tls)
        except DriverError as exc:
            log.warning("the engine did not re-read its TLS files; trying again", extra={"error": str(exc)})
            continue
        files.done()
        log.info("the engine re-read its renewed TLS files")


async def _close_driver(app: web.Application) -> None:
    """Close the driver's connections on shutdown (drivers with pools, e.g. Cassandra, expose close())."""
    close = getattr(app[CONTEXT].driver, "close", None)
    if callable(close):
        await asyncio.to_thread(close)
