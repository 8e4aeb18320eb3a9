"""A caller's mistakes are 400 with the reason, never a 500, on real MariaDB 10.11 and PostgreSQL 15.

Before: PostgreSQL answered a bad parameter value, a ``pg_`` role and a NUL in a password with 500s.
"""

from __future__ import annotations

import aiohttp
import pytest

from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import TOKEN_HEADER, ErrorReply, bearer
from tests.integration.conftest import RunningAgent, StartAgent
from tests.integration.servers.mariadb import MariaDBServer
from tests.integration.servers.postgresql import PostgreSQLServer


async def raw_put(agent: RunningAgent, path: str, body: bytes) -> tuple[int, ErrorReply]:
    """A PUT the client library would refuse to build (its models validate first)."""
    headers = {TOKEN_HEADER: bearer(agent.token), "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.put(agent.url + path, data=body, headers=headers) as r,
    ):
        return r.status, ErrorReply.model_validate_json(await r.text())


async def refused(call: object) -> AgentError:
    with pytest.raises(AgentError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_postgresql_refusals_are_400(postgresql: PostgreSQLServer, start_agent: StartAgent) -> None:
    agent = await start_agent("postgresql", postgresql.engine_config())
    bad_value = await refused(agent.client.apply_parameters({"max_connections": "lots"}))
    assert bad_value.status == 400 and "max_connections" in bad_value.reply.detail
    unknown = await refused(agent.client.apply_parameters({"no_such_setting": "1"}))
    assert unknown.status == 400
    reserved = await refused(agent.client.ensure_user("pg_evil", "pw-123456", []))
    assert reserved.status == 400 and reserved.reply.error == "bad_name"
    status, reply = await raw_put(agent, "/v1/users/app", b'{"password": "a\\u0000b", "grants": []}')
    assert status == 400 and reply.error == "bad_request" and "password" in reply.detail
    assert not postgresql.query("SELECT 1 FROM pg_roles WHERE rolname IN ('pg_evil', 'app')")
    assert postgresql.query("SHOW max_connections") == [("40",)]


async def test_mariadb_refusals_are_400(mariadb: MariaDBServer, start_agent: StartAgent) -> None:
    agent = await start_agent("mariadb", mariadb.engine_config())
    bad_value = await refused(agent.client.apply_parameters({"max_connections": "lots"}))
    assert bad_value.status == 400
    status, reply = await raw_put(agent, "/v1/users/app", b'{"password": "a\\u0000b", "grants": []}')
    assert status == 400 and reply.error == "bad_request"
    assert not mariadb.query("SELECT 1 FROM mysql.user WHERE User = 'app'")
