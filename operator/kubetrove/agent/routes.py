"""The agent's routes: parse the body into a protocol model, validate names, call the driver in a thread.

Drivers are synchronous; ``asyncio.to_thread`` keeps the event loop free for probes while a driver
waits on its engine. Every handler is named ``handle_<verb>_<path>`` after the route it serves.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from kubetrove.agent import http, names, volume
from kubetrove.agent.engines.base import DriverError, EngineUnavailable, RingDriver, Unsupported
from kubetrove.agent.metrics import CONTENT_TYPE
from kubetrove.agent.protocol import (
    DatabaseList,
    DatabaseRequest,
    ErrorCode,
    Health,
    LeaveCheckRequest,
    MembersRequest,
    Ok,
    ParametersRequest,
    Paths,
    RebuildRequest,
    ReplicationSourceRequest,
    UserRequest,
    VolumeReply,
    VolumeUsage,
    WaitReply,
    WaitRequest,
)

log = logging.getLogger("kubetrove.agent")
METRICS_MAX_AGE = 10.0  # seconds; Prometheus scrapes every 15-60 s, anything faster is served from memory


def _name(request: web.Request, kind: names.Kind) -> str:
    return names.validate(http.context(request).bundle.names, kind, request.match_info["name"])


async def handle_get_healthz(request: web.Request) -> web.Response:
    """Liveness of the agent process only: a slow or recovering engine must not get the pod killed."""
    return http.reply(Health(ok=True))


async def handle_get_readyz(request: web.Request) -> web.Response:
    """Readiness: no restore in progress (http.restore_not_ready), and the engine answers a trivial query.

    Unauthenticated: the engine's own error (host names, user names, server versions) goes to the agent's
    log, never into the answer; the kubelet needs only the status code."""
    if (restoring := http.restore_not_ready(request)) is not None:
        return restoring
    try:
        await asyncio.to_thread(http.context(request).driver.ping)
    except DriverError as exc:
        log.warning("readyz: the engine is not ready: %s", exc)
        return http.error_response(503, ErrorCode.ENGINE_UNAVAILABLE, "the engine is not ready")
    return http.reply(Health(ok=True))


async def handle_get_metrics(request: web.Request) -> web.Response:
    """Prometheus text. Unauthenticated, so a scrape never costs an engine connection of its own: the
    gauges are refreshed at most every ``METRICS_MAX_AGE`` seconds, by one scrape while the others wait
    (and by every authenticated ``/v1/status``, which the operator calls anyway)."""
    ctx = http.context(request)
    if not ctx.metrics.fresh(METRICS_MAX_AGE):
        async with ctx.metrics.refreshing:
            if not ctx.metrics.fresh(METRICS_MAX_AGE):
                ctx.metrics.observe_volume(await asyncio.to_thread(_volume, ctx))
                try:
                    ctx.metrics.observe(await asyncio.to_thread(ctx.driver.status))
                except EngineUnavailable:
                    ctx.metrics.observe(None)
    return web.Response(body=ctx.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def handle_get_status(request: web.Request) -> web.Response:
    """Role, read-only flag, version, positions, lag and health; the data volume's usage."""
    ctx = http.context(request)
    usage = await asyncio.to_thread(_volume, ctx)
    ctx.metrics.observe_volume(usage)
    try:
        status = await asyncio.to_thread(ctx.driver.status)
    except EngineUnavailable:
        ctx.metrics.observe(None)
        raise
    ctx.metrics.observe(status)
    return http.reply(status.model_copy(update={"volume": usage}))


async def handle_get_volume(request: web.Request) -> web.Response:
    """The data volume's usage alone: no engine call, so it answers while the engine is down (stopped on
    a full disk: the operator's autogrow still sees the figures, docs/operations.md)."""
    ctx = http.context(request)
    usage = await asyncio.to_thread(_volume, ctx)
    ctx.metrics.observe_volume(usage)
    return http.reply(VolumeReply(volume=usage))


def _volume(ctx: http.AgentContext) -> VolumeUsage | None:
    """The data volume's usage (the driver's ``data_dir``: the agent's ``--data-dir``)."""
    return volume.measure(ctx.driver.config.options.get("data_dir"))


async def handle_get_databases(request: web.Request) -> web.Response:
    """User databases, sorted."""
    return http.reply(
        DatabaseList(names=await asyncio.to_thread(http.context(request).driver.list_databases))
    )


async def handle_put_database(request: web.Request) -> web.Response:
    """Create the database if missing; 200 either way (``detail`` says which)."""
    name = _name(request, names.Kind.DATABASE)
    body = await http.read_body(request, DatabaseRequest)
    created = await asyncio.to_thread(
        http.context(request).driver.ensure_database, name, body.replication_factor
    )
    return http.reply(Ok(detail="created" if created else "exists"))


async def handle_delete_database(request: web.Request) -> web.Response:
    """Drop the database; 404 if it does not exist."""
    name = _name(request, names.Kind.DATABASE)
    await asyncio.to_thread(http.context(request).driver.drop_database, name)
    return http.reply(Ok(detail="dropped"))


async def handle_put_user(request: web.Request) -> web.Response:
    """Create or update the user: password and grants become exactly the body's."""
    ctx = http.context(request)
    name = _name(request, names.Kind.USER)
    body = await http.read_body(request, UserRequest)
    http.remember_secret(request, body.password)
    for grant in body.grants:
        names.validate(ctx.bundle.names, names.Kind.DATABASE, grant.database)
    created = await asyncio.to_thread(ctx.driver.ensure_user, name, body.password, list(body.grants))
    return http.reply(Ok(detail="created" if created else "updated"))


async def handle_delete_user(request: web.Request) -> web.Response:
    """Drop the user; 404 if it does not exist."""
    name = _name(request, names.Kind.USER)
    await asyncio.to_thread(http.context(request).driver.drop_user, name)
    return http.reply(Ok(detail="dropped"))


async def handle_put_parameters(request: web.Request) -> web.Response:
    """Apply dynamic parameters; the reply lists what needs a restart instead."""
    body = await http.read_body(request, ParametersRequest)
    bundle = http.context(request).bundle
    for key in body.parameters:
        names.validate_parameter(key)
        if not bundle.allows_parameter(key):
            raise names.InvalidName(f"parameter {key!r} is not one this agent sets ({bundle.engine})")
    return http.reply(await asyncio.to_thread(http.context(request).driver.apply_parameters, body.parameters))


async def handle_post_replication_source(request: web.Request) -> web.Response:
    """Become a read-only replica of host:port."""
    body = await http.read_body(request, ReplicationSourceRequest)
    http.remember_secret(request, body.password)
    names.validate_host(body.host)
    driver = http.context(request).driver
    await asyncio.to_thread(driver.set_source, body.host, body.port, body.user, body.password)
    return http.reply(Ok(detail=f"replicating from {body.host}:{body.port}"))


async def handle_post_replication_stop(request: web.Request) -> web.Response:
    """Stop receiving from the source."""
    await asyncio.to_thread(http.context(request).driver.stop_replication)
    return http.reply(Ok(detail="stopped"))


async def handle_post_replication_promote(request: web.Request) -> web.Response:
    """Stop replicating and accept writes."""
    await asyncio.to_thread(http.context(request).driver.promote)
    return http.reply(Ok(detail="promoted"))


async def handle_post_replication_fence(request: web.Request) -> web.Response:
    """Refuse client writes."""
    await asyncio.to_thread(http.context(request).driver.fence)
    return http.reply(Ok(detail="fenced"))


async def handle_post_replication_wait(request: web.Request) -> web.Response:
    """200 when the position is applied, 408 when the timeout passes first."""
    body = await http.read_body(request, WaitRequest)
    reached = await asyncio.to_thread(
        http.context(request).driver.wait_for_position, body.position, body.timeout_seconds
    )
    if not reached:
        return http.error_response(
            408, ErrorCode.TIMEOUT, f"position not applied within {body.timeout_seconds}s"
        )
    return http.reply(WaitReply(reached=True, position=body.position))


async def handle_post_replication_rebuild(request: web.Request) -> web.Response:
    """Start re-provisioning this member from host:port (202, naming what is discarded); 501 for engines
    that cannot, 409 when this member must not be rebuilt now."""
    body = await http.read_body(request, RebuildRequest)
    http.remember_secret(request, body.password)
    names.validate_host(body.host)
    ctx = http.context(request)
    driver = ctx.bundle.rebuilder(ctx.driver)
    if driver is None:
        raise Unsupported(f"{ctx.driver.engine} cannot rebuild a member from a donor")
    reply = await asyncio.to_thread(driver.start_rebuild, body.host, body.port, body.user, body.password)
    return http.reply(reply, 202)


async def handle_put_replication_members(request: web.Request) -> web.Response:
    """Make the engine-elected set consist of these members (one change per call); 501 for other engines."""
    body = await http.read_body(request, MembersRequest)
    for member in body.members:
        host, _, port = member.host.rpartition(":")
        names.validate_host(host)
        if not (port.isdigit() and 0 < int(port) < 65536):
            raise names.InvalidName(f"member host must be host:port, not {member.host!r}")
    ctx = http.context(request)
    driver = ctx.bundle.membership(ctx.driver)
    if driver is None:
        raise Unsupported(f"{ctx.driver.engine} has no engine-elected set: its membership is not managed")
    return http.reply(await asyncio.to_thread(driver.set_members, list(body.members)))


def _ring(request: web.Request, what: str) -> RingDriver:
    """This agent's ring driver, or 501 naming ``what`` a non-ring engine does not have."""
    ctx = http.context(request)
    driver = ctx.bundle.ring(ctx.driver)
    if driver is None:
        raise Unsupported(f"{ctx.driver.engine} is not a ring: it has no {what}")
    return driver


async def handle_put_ring_replication(request: web.Request) -> web.Response:
    """Give a ring's auth keyspace (and the other replicated system keyspaces) this factor; 501 elsewhere."""
    body = await http.read_body(request, DatabaseRequest)
    driver = _ring(request, "system keyspaces to replicate")
    changed = await asyncio.to_thread(driver.ensure_ring_replication, body.replication_factor)
    return http.reply(Ok(detail="raised" if changed else "unchanged"))


async def handle_post_ring_leave_check(request: web.Request) -> web.Response:
    """Would a scale-down to ``nodes_left`` nodes be refused? 409 naming the keyspaces; 501 off rings."""
    body = await http.read_body(request, LeaveCheckRequest)
    driver = _ring(request, "node to decommission")
    await asyncio.to_thread(driver.leave_check, body.nodes_left, list(body.lowering))
    return http.reply(Ok(detail=f"{body.nodes_left} nodes can hold every keyspace"))


async def handle_post_ring_decommission(request: web.Request) -> web.Response:
    """This node leaves the ring (streams its ranges away); 409 when a keyspace needs it, 501 elsewhere."""
    await asyncio.to_thread(_ring(request, "node to decommission").decommission)
    return http.reply(Ok(detail="decommissioned"))


def add_routes(app: web.Application) -> None:
    """Register every route of ``protocol.Paths`` that this agent serves."""
    app.router.add_routes(
        [
            web.get(Paths.HEALTHZ, handle_get_healthz),
            web.get(Paths.READYZ, handle_get_readyz),
            web.get(Paths.METRICS, handle_get_metrics),
            web.get(Paths.STATUS, handle_get_status),
            web.get(Paths.VOLUME, handle_get_volume),
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
            web.post(Paths.REPLICATION_REBUILD, handle_post_replication_rebuild),
            web.put(Paths.REPLICATION_MEMBERS, handle_put_replication_members),
            web.put(Paths.RING_REPLICATION, handle_put_ring_replication),
            web.post(Paths.RING_DECOMMISSION, handle_post_ring_decommission),
            web.post(Paths.RING_LEAVE_CHECK, handle_post_ring_leave_check),
        ]
    )
