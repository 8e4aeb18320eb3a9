"""The operator's client: typed replies, AgentError on any non-2xx, retries ONLY on connection errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import Grant, Privilege, Role
from tests.unit.agent.conftest import TOKEN
from tests.unit.agent.fake_driver import FakeDriver

Serve = Callable[[web.Application], Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


async def test_every_method_against_the_real_app(serve: Serve) -> None:
    driver = FakeDriver()
    async with AgentClient(await serve(make_app(driver, TOKEN)), TOKEN) as client:
        assert (await client.healthz()).ok and (await client.readyz()).ok
        assert (await client.status()).role is Role.PRIMARY
        assert (await client.ensure_database("app")).detail == "created"
        assert await client.list_databases() == ["app"]
        grants = [Grant(database="app", privileges=[Privilege.READ])]
        assert (await client.ensure_user("u", "pw-1", grants)).detail == "created"
        assert (await client.apply_parameters({"max_connections": "9"})).applied == ["max_connections"]
        await client.set_source("db-0", 3306, "repl", "pw")
        await client.stop_replication()
        await client.fence()
        await client.promote()
        assert (await client.wait_for_position("0-1-1", 1)).reached
        assert not (await client.wait_for_position("unreachable", 1)).reached  # 408 is an answer
        await client.drop_user("u")
        await client.drop_database("app")
        with pytest.raises(AgentError) as missing:
            await client.drop_database("app")
        assert missing.value.status == 404 and missing.value.reply.error == "not_found"
    assert [c[0] for c in driver.calls][:3] == ["ping", "status", "ensure_database"]


async def test_http_errors_are_never_retried(serve: Serve) -> None:
    hits = 0

    async def unavailable(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response({"error": "engine_unavailable", "detail": "down"}, status=503)

    app = web.Application()
    app.router.add_get("/v1/status", unavailable)
    async with AgentClient(await serve(app), TOKEN, retries=5, backoff=0) as client:
        with pytest.raises(AgentError) as failed:
            await client.status()
    assert hits == 1
    assert (failed.value.status, failed.value.reply.error) == (503, "engine_unavailable")


async def test_a_reply_that_is_not_ours_still_becomes_an_agent_error(serve: Serve) -> None:
    async def gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>bad gateway</html>")

    app = web.Application()
    app.router.add_get("/v1/status", gateway)
    async with AgentClient(await serve(app), TOKEN) as client:
        with pytest.raises(AgentError) as failed:
            await client.status()
    assert failed.value.reply.error == "http_502" and "bad gateway" in failed.value.reply.detail


async def test_timeouts_are_not_retried(serve: Serve) -> None:
    hits = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await asyncio.sleep(5)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/replication/promote", slow)
    async with AgentClient(await serve(app), TOKEN, timeout=0.2, retries=5, backoff=0) as client:
        with pytest.raises(asyncio.TimeoutError):
            await client.promote()
    assert hits == 1


async def test_connection_errors_are_retried_then_raised() -> None:
    port = free_port()  # nothing listens there
    attempts = 0
    original = AgentClient._once

    async def counting(self: AgentClient, *args: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await original(self, *args)

    client = AgentClient(f"http://127.0.0.1:{port}", TOKEN, retries=3, backoff=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AgentClient, "_once", counting)
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.status()
    await client.close()
    assert attempts == 4  # the first try and three retries


async def test_a_connection_error_then_success_returns_the_reply(serve: Serve) -> None:
    url = await serve(make_app(FakeDriver(), TOKEN))
    client = AgentClient(url, TOKEN, retries=2, backoff=0)
    failures = iter([aiohttp.ClientConnectionError("reset"), None])
    original = AgentClient._once

    async def flaky(self: AgentClient, *args: Any) -> Any:
        error = next(failures)
        if error is not None:
            raise error
        return await original(self, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(AgentClient, "_once", flaky)
        assert (await client.status()).engine == "mariadb"
    await client.close()


async def test_wrong_token_is_an_agent_error(serve: Serve) -> None:
    async with AgentClient(await serve(make_app(FakeDriver(), TOKEN)), "nope") as client:
        with pytest.raises(AgentError) as denied:
            await client.status()
    assert denied.value.status == 401
