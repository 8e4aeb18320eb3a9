"""``GET /v1/restore`` and the readiness gate of a pod created with ``spec.restoreFrom``.

The gate (agent/backup/restore_gate.py) runs as a background task for the application's lifetime,
started on startup and cancelled on cleanup. ``/readyz`` asks ``restore_not_ready`` first: until the
restore is DONE it answers 503, so the kubelet keeps the pod out of the Services.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from kubetrove.agent.backup.restore_gate import RestoreGate
from kubetrove.agent.protocol import Paths
from kubetrove.agent.server import error_response

GATE = web.AppKey("kubetrove_restore_gate", RestoreGate)


def restore_not_ready(request: web.Request) -> web.Response | None:
    """A 503 naming the restore's state while it is not done, else None (no restore, or done)."""
    gate = request.app.get(GATE)
    if gate is None or gate.ready:
        return None
    progress = gate.progress
    return error_response(503, f"restore_{progress.state.value}", progress.detail)


async def handle_get_restore(request: web.Request) -> web.Response:
    """This pod's restore progress; 404 when the agent was started without a restore request."""
    gate = request.app.get(GATE)
    if gate is None:
        return error_response(404, "not_found", "this agent has no restore request")
    return web.Response(text=gate.progress.model_dump_json(), content_type="application/json")


def add_routes(app: web.Application, gate: RestoreGate | None) -> None:
    """Serve ``GET /v1/restore``; with a gate, run it in the background for the app's lifetime."""
    app.router.add_get(Paths.RESTORE, handle_get_restore)
    if gate is None:
        return
    app[GATE] = gate

    async def run_gate(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(gate.run(), name="restore-gate")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(run_gate)
