"""Liveness while a standby waits for the Lease.

kopf serves its liveness endpoint only after every startup handler has finished
(``kopf/_core/reactor/running.py``: the health reporter waits for ``started_flag``), and our startup
handler blocks until the Lease is ours (settings.py). Without this, the kubelet would see a waiting
standby as dead and restart it forever. So, while waiting, a minimal server answers the same path
on the same port; it is closed before kopf's own reporter binds that port.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from aiohttp import web

log = logging.getLogger(__name__)


async def _standby(_: web.Request) -> web.Response:
    return web.json_response({"standby": "waiting for the Lease"})


@asynccontextmanager
async def standby_probe(endpoint: str | None) -> AsyncIterator[None]:
    """Answer GETs on ``endpoint`` (kopf's liveness URL) for the duration; None: do nothing."""
    if not endpoint:
        yield
        return
    parts = urlsplit(endpoint)
    app = web.Application()
    app.add_routes([web.get(parts.path or "/", _standby)])
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, parts.hostname, parts.port).start()
    except OSError as exc:  # the port is taken: waiting for the Lease matters more than the probe
        log.warning("Standby liveness endpoint %s not served: %s", endpoint, exc)
    try:
        yield
    finally:
        await runner.cleanup()
