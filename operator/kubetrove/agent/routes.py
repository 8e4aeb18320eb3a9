"""The agent's routes: parse the body into a protocol model, validate names, call the driver in a thread.

Drivers are synchronous; ``asyncio.to_thread`` keeps the event loop free for probes while a driver
waits on its engine. Every handler is named ``handle_<verb>_<path>`` after the route it serves.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel

from kubetrove.agent import names
from kubetrove.agent.engines.base import EngineUnavailable, Unsupported
from kubetrove.agent.metrics import CONTENT_TYPE
from kubetrove.agent.protocol import (
    DatabaseList,
    DatabaseRequest,
    Health,
    MembersRequest,
    Ok,
    ParametersRequest,
    Paths,
    ReplicationSourceRequest,
    UserRequest,
    WaitReply,
    WaitRequest,
)
from kubetrove.agent.routes_restore import restore_not_ready
from kubetrove.agent.server import CONTEXT, AgentContext, error_response, remember_secret

M = TypeVar("M", bound=BaseModel)


def _reply(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, text=model.model_dump_json(), content_type="application/json")


async def _body(request: web.Request, model: type[M]) -> M:
    """Parse the JSON body into ``model``; an empty body means the model's defaults."""
    raw = await request.read()
    return model.model_validate_json(raw) if raw.strip() else model.model_validate({})


def _ctx(request: web.Request) -> AgentContext:
    return request.app[CONTEXT]


def _name(request: web.Request, kind: names.Kind) -> str:
    return names.validate(_ctx(request).bundle.names, kind, request.match_info["name"])


async def handle_get_healthz(request: web.Request) -> web.Response:
    """Liveness of the agent process only: a slow or recovering engine must not get the pod killed."""
    return _reply(Health(ok=True))


async def handle_get_readyz(request: web.Request) -> web.Response:
    """Readiness: no restore in progress (routes_restore), and the engine answers a trivial query."""
    if (restoring := restore_not_ready(request)) is not None:
        return restoring
    await asyncio.to_thread(_ctx(request).driver.ping)
    return _reply(Health(ok=True))


async def handle_get_metrics(request: web.Request) -> web.Response:
    """Prometheus text; the engine gauges are refreshed from a fresh status on every scrape."""
    ctx = _ctx(request)
    try:
        ctx.metrics.observe(await asyncio.to_thread(ctx.driver.status))
    except EngineUnavailable:
        ctx.metrics.observe(None)
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def handle_get_status(request: web.Request) -> web.Response:
    """Role, read-only flag, version, positions, lag and health."""
    ctx = _ctx(request)
    try:
        status = await asyncio.to_thread(ctx.driver.status)
    except EngineUnavailable:
        ctx.metrics.observe(None)
        raise
    ctx.metrics.observe(status)
    return _reply(status)


async def handle_get_databases(request: web.Request) -> web.Response:
    """User databases, sorted."""
    return _reply(DatabaseList(names=await asyncio.to_thread(_ctx(request).driver.list_databases)))


async def handle_put_database(request: web.Request) -> web.Response:
    """Create the database if missing; 200 either way (``detail`` says which)."""
    name = _name(request, names.Kind.DATABASE)
    body = await _body(request, DatabaseRequest)
    created = await asyncio.to_thread(_ctx(request).driver.ensure_database, name, body.replication_factor)
    return _reply(Ok(detail="created" if created else "exists"))


async def handle_delete_database(request: web.Request) -> web.Response:
    """Drop the database; 404 if it does not exist."""
    name = _name(request, names.Kind.DATABASE)
    await asyncio.to_thread(_ctx(request).driver.drop_database, name)
    return _reply(Ok(detail="dropped"))


async def handle_put_user(request: web.Request) -> web.Response:
    """Create or update the user: password and grants become exactly the body's."""
    ctx = _ctx(request)
    name = _name(request, names.Kind.USER)
    body = await _body(request, UserRequest)
    remember_secret(request, body.password)
    for grant in body.grants:
        names.validate(ctx.bundle.names, names.Kind.DATABASE, grant.database)
    created = await asyncio.to_thread(ctx.driver.ensure_user, name, body.password, list(body.grants))
    return _reply(Ok(detail="created" if created else "updated"))


async def handle_delete_user(request: web.Request) -> web.Response:
    """Drop the user; 404 if it does not exist."""
    name = _name(request, names.Kind.USER)
    await asyncio.to_thread(_ctx(request).driver.drop_user, name)
    return _reply(Ok(detail="dropped"))


async def handle_put_parameters(request: web.Request) -> web.Response:
    """Apply dynamic parameters; the reply lists what needs a restart instead."""
    body = await _body(request, ParametersRequest)
    for key in body.parameters:
        names.validate_parameter(key)
    return _reply(await asyncio.to_thread(_ctx(request).driver.apply_parameters, body.parameters))


async def handle_post_replication_source(request: web.Request) -> web.Response:
    """Become a read-only replica of host:port."""
    body = await _body(request, ReplicationSourceRequest)
    remember_secret(request, body.password)
    names.validate_host(body.host)
    driver = _ctx(request).driver
    await asyncio.to_thread(driver.set_source, body.host, body.port, body.user, body.password)
    return _reply(Ok(detail=f"replicating from {body.host}:{body.port}"))


async def handle_post_replication_stop(request: web.Request) -> web.Response:
    """Stop receiving from the source."""
    await asyncio.to_thread(_ctx(request).driver.stop_replication)
    return _reply(Ok(detail="stopped"))


async def handle_post_replication_promote(request: web.Request) -> web.Response:
    """Stop replicating and accept writes."""
    await asyncio.to_thread(_ctx(request).driver.promote)
    return _reply(Ok(detail="promoted"))


async def handle_post_replication_fence(request: web.Request) -> web.Response:
    """Refuse client writes."""
    await asyncio.to_thread(_ctx(request).driver.fence)
    return _reply(Ok(detail="fenced"))


async def handle_post_replication_wait(request: web.Request) -> web.Response:
    """200 when the position is applied, 408 when the timeout passes first."""
    body = await _body(request, WaitRequest)
    reached = await asyncio.to_thread(
        _ctx(request).driver.wait_for_position, body.position, body.timeout_seconds
    )
    if not reached:
        return error_response(408, "timeout", f"position not applied within {body.timeout_seconds}s")
    return _reply(WaitReply(reached=True, position=body.position))


async def handle_put_replication_members(request: web.Request) -> web.Response:
    """Make the engine-elected set consist of these members (one change per call); 501 for other engines."""
    body = await _body(request, MembersRequest)
    for member in body.members:
        host, _, port = member.host.rpartition(":")
        names.validate_host(host)
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise names.InvalidName(f"member host must be host:port, not {member.host!r}")
    ctx = _ctx(request)
    driver = ctx.bundle.membership(ctx.driver)
    if driver is None:
        raise Unsupported(f"{ctx.driver.engine} has no engine-elected set: its membership is not managed")
    return _reply(await asyncio.to_thread(driver.set_members, list(body.members)))


def add_routes(app: web.Application) -> None:
    """Register every route of ``protocol.Paths`` that this agent serves."""
    app.router.add_routes(
        [
            web.get(Paths.HEALTHZ, handle_get_healthz),
            web.get(Paths.READYZ, handle_get_readyz),
            web.get(Paths.METRICS, handle_get_metrics),
            web.get(Paths.STATUS, handle_get_status),
            web.get(Paths.DATABASES, handle_get_databases),
            web.put(Paths.DATABASE, handle_put_database),
            web.delete(Paths.DATABASE, handle_delete_database),
            web.put(Paths.USER, handle_put_user),
            web.delete(Paths.USER, handle_delete_user),
            web.put(Paths.PARAMETERS, handle_put_parameters),
            web.post(Paths.REPLICATION_SOURCE, handle_post_replication_source),
            web.post(Paths.REPLICATION_STOP, handle_post_replication_stop),
            web.post(Paths.REPLICATION_PROMOTE, handle_post_replication_promote),
            web.post(Paths.REPLICATION_FENCE, handle_post_replication_fence),
            web.post(Paths.REPLICATION_WAIT, handle_post_replication_wait),
            web.put(Paths.REPLICATION_MEMBERS, handle_put_replication_members),
        ]
    )
