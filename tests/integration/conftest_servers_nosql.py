"""Fixtures for the NoSQL engines: one Cassandra node and one standalone mongod per test session,
replica sets of real mongod per call, and a real agent (``start_agent`` from conftest.py: the aiohttp
app on a loopback port) in front of a server, driven over HTTP by an ``aiohttp.ClientSession`` that
carries the agent's token.

Imported by tests/integration/conftest.py. A server that cannot start raises: its tests ERROR, the
tier fails (never skips).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from kubetrove.agent.engines.config import EngineConfig
from tests.integration.servers import cassandra, mongod

__all__ = [
    "cassandra_agent",
    "cassandra_server",
    "mongod_replica_set_factory",
    "mongod_server",
    "mongodb_agent",
]


async def put_json(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """PUT ``body`` to the agent; (status, decoded JSON reply)."""
    resp = await http.put(path, json=body)
    return resp.status, await resp.json()


@pytest.fixture(scope="session")
def cassandra_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cassandra.CassandraServer]:
    """A Cassandra 5.0 node with password auth, for the whole session; stopped by PID at the end."""
    server = cassandra.start(tmp_path_factory.mktemp("cassandra"))
    print(f"\ncassandra {cassandra.VERSION} up in {server.startup_seconds:.1f} s", file=sys.stderr)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongod_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[mongod.Mongod]:
    """A standalone mongod 6.0.5 with authorization and a root login, for the whole session."""
    server = mongod.start_standalone(tmp_path_factory.mktemp("mongod"))
    yield server
    server.remove()


@pytest.fixture(scope="session")
def mongod_replica_set_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., mongod.ReplicaSet]]:
    """Start a fresh replica set of real mongod per call (``start_replica_set``'s keyword arguments:
    ``count``, ``initiate``, ``settings``); every set is stopped by PID at the end of the session."""
    started: list[mongod.ReplicaSet] = []

    def make(**kwargs: Any) -> mongod.ReplicaSet:
        rs = mongod.start_replica_set(tmp_path_factory.mktemp("mongod-rs"), **kwargs)
        started.append(rs)
        print(f"\nmongod {mongod.VERSION} replica set up: {rs.states()}", file=sys.stderr)
        return rs

    yield make
    for rs in started:
        rs.stop()


async def _session(
    start_agent: Callable[..., Awaitable[Any]],
    engine: str,
    server: Any,
    options: dict[str, str] | None = None,
) -> aiohttp.ClientSession:
    config = EngineConfig(port=server.port, user=server.user, password=server.password, options=options or {})
    agent = await start_agent(engine, config)
    return aiohttp.ClientSession(base_url=agent.url, headers={"Authorization": f"Bearer {agent.token}"})


@pytest.fixture
async def cassandra_agent(
    start_agent: Callable[..., Awaitable[Any]], cassandra_server: cassandra.CassandraServer
) -> AsyncIterator[aiohttp.ClientSession]:
    """An authenticated HTTP session to a real agent serving the Cassandra driver."""
    async with await _session(
        start_agent, "cassandra", cassandra_server, cassandra_server.agent_options()
    ) as http:
        yield http


@pytest.fixture
async def mongodb_agent(
    start_agent: Callable[..., Awaitable[Any]], mongod_server: mongod.Mongod
) -> AsyncIterator[aiohttp.ClientSession]:
    """An authenticated HTTP session to a real agent serving the MongoDB driver against mongod."""
    async with await _session(start_agent, "mongodb", mongod_server) as http:
        yield http
