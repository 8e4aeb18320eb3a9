"""``GET /v1/restore`` and the readiness gate of a pod created with ``spec.restoreFrom``.

The gate (agent/backup/restore_gate.py) runs as a background task for the application's lifetime,
started on startup and cancelled on cleanup. ``/readyz`` asks ``http.restore_not_ready`` first: until
the restore is DONE it answers 503, so the kubelet keeps the pod out of the Services.
"""

from __future__ import annotations

from aiohttp import web

from kubetrove.agent.http import CONTEXT, background, context, error_response, reply
from kubetrove.agent.protocol import ErrorCode, Paths


async def handle_get_restore(request: web.Request) -> web.Response:
    """This pod's restore progress; 404 when the agent was started without a restore request."""
    gate = context(request).restore_gate
    if gate is None:
        return error_response(404, ErrorCode.NOT_FOUND, "this agent has no restore request")
    return reply(gate.progress)


def add_routes(app: web.Application) -> None:
    """Serve ``GET /v1/restore``; with a restore gate in the context, run it for the app's lifetime."""
    app.router.add_get(Paths.RESTORE, handle_get_restore)
    gate = app[CONTEXT].restore_gate
    if gate is None:
        return
    app.cleanup_ctx.append(background(gate.run, "restore-gate"))
