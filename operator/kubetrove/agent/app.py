"""``make_app``: the agent's application composed from its parts (the composition root under ``main``).

Builds the context (the driver, its engine's bundle from the registry, token, metrics, redactor, restore
gate) and hands the app factory (``server.build_app``) the route groups the agent serves.
"""

from __future__ import annotations

from aiohttp import web

from kubetrove.agent import auth, routes, routes_backup, routes_logs, routes_restore, routes_verify
from kubetrove.agent.backup.restore_gate import RestoreGate
from kubetrove.agent.engine_logs import EngineLogPublisher
from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.registry import bundle_for
from kubetrove.agent.http import AgentContext, RouteGroup, background
from kubetrove.agent.logs import Redactor
from kubetrove.agent.metrics import AgentMetrics
from kubetrove.agent.server import build_app

ROUTE_GROUPS: tuple[RouteGroup, ...] = (
    routes.add_routes,  # health, status, databases, users, parameters, replication
    routes_backup.add_routes,  # POST /v1/backups, GET and DELETE /v1/backups/{id}
    routes_verify.add_routes,  # POST /v1/verify (on a throwaway restored instance)
    routes_restore.add_routes,  # GET /v1/restore; runs the restore gate that holds /readyz
    routes_logs.add_routes,  # GET /v1/logs/slow and /v1/logs/error (the engine's logs, redacted)
)


def make_app(
    driver: EngineDriver,
    token: str | auth.TokenSource,
    *,
    redactor: Redactor | None = None,
    metrics: AgentMetrics | None = None,
    restore_gate: RestoreGate | None = None,
    tls: auth.ServerTLS | None = None,
    engine_tls: auth.EngineTLSFiles | None = None,
    engine_tls_interval: float = 10.0,
    engine_log_interval: float = 0,
) -> web.Application:
    """The agent's aiohttp application serving ``driver`` behind ``token``; with ``tls`` (the context the
    site serves with) it re-loads the TLS files and, with a client CA, requires client certificates; with
    ``engine_tls`` it has the engine re-read its own TLS files when they change; with
    ``engine_log_interval`` > 0 (seconds) it publishes the engine's new log entries on stdout that often."""
    if isinstance(token, str):
        if not token:
            raise ValueError("the agent refuses to serve without a token")
        fixed = token
        token = lambda: fixed  # noqa: E731
    context = AgentContext(
        driver=driver,
        bundle=bundle_for(driver.engine),
        token=token,
        metrics=metrics or AgentMetrics(driver.engine),
        redactor=redactor if redactor is not None else Redactor(),
        restore_gate=restore_gate,
        tls=tls,
        engine_tls=engine_tls,
        engine_tls_interval=engine_tls_interval,
    )
    app = build_app(context, ROUTE_GROUPS)
    if engine_log_interval > 0:
        publisher = EngineLogPublisher(driver, context.redactor, engine_log_interval)
        app.cleanup_ctx.append(background(publisher.run, "kubetrove-agent-engine-logs"))
    return app
