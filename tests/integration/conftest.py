"""Integration fixtures: private engine servers (factories: several at once) and real agents on loopback.

Servers are session-scoped and stopped by PID at the end of the session; a server that cannot start
makes its tests ERROR (never skip). Agents are the real aiohttp app on a free loopback port, one per test.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pytest
from aiohttp import web

from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver
from tests.integration.servers import cassandra
from tests.integration.servers._proc import free_port
from tests.integration.servers.mariadb import MariaDBServer, start_mariadb
from tests.integration.servers.postgresql import PostgreSQLServer, start_postgresql, start_standby

# The machine's Cassandra turn (servers/cassandra.py, hold_jvm_turn): this tier runs every test that
# starts or uses a Cassandra JVM first, then stops those JVMs and gives the turn back, so the e2e tier
# beside it (make test) gets its Cassandra pods and host ring without waiting for this whole session.
CASSANDRA_FIXTURES = frozenset({"cassandra_server", "cassandra_agent", "cassandra_ring3", "rig"})


def uses_cassandra(item: pytest.Item) -> bool:
    """By name (modules and parameters say "cassandra") or by a Cassandra fixture in its closure."""
    names = getattr(item, "fixturenames", ())
    return "cassandra" in item.nodeid.lower() or not CASSANDRA_FIXTURES.isdisjoint(names)


@pytest.hookimpl(trylast=True)  # after tests/conftest.py selected the tier's items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = sorted(items, key=lambda item: not uses_cassandra(item))  # stable: file order kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)
    finally:
        if uses_cassandra(item) and (nextitem is None or not uses_cassandra(nextitem)):
            cassandra.release_jvm_turn()


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


def _servers(start: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """A factory fixture's body: ``start`` per call, every server stopped by PID at teardown."""
    started: list[S] = []

    def make(*args: Any, **kwargs: Any) -> S:
        server = start(*args, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], MariaDBServer]]:
    """Start a fresh MariaDB (unique server_id) per call; all are stopped at the end of the session."""
    server_ids = itertools.count(1)
    yield from _servers(lambda: start_mariadb(tmp_path_factory.mktemp("mariadb"), next(server_ids)))


@pytest.fixture(scope="session")
def mariadb(mariadb_factory: Callable[[], MariaDBServer]) -> MariaDBServer:
    """One MariaDB shared by the tests that do not need a server of their own."""
    return mariadb_factory()


@pytest.fixture(scope="session")
def postgresql_factory() -> Iterator[Callable[..., PostgreSQLServer]]:
    """Start a fresh PostgreSQL 15 (or, given a server, a streaming standby of it) per call."""

    def start(standby_of: PostgreSQLServer | None = None) -> PostgreSQLServer:
        return start_postgresql() if standby_of is None else start_standby(standby_of)

    yield from _servers(start)


@pytest.fixture(scope="session")
def postgresql(postgresql_factory: Callable[..., PostgreSQLServer]) -> PostgreSQLServer:
    """One PostgreSQL shared by the tests that do not need a server of their own."""
    return postgresql_factory()


@dataclass(frozen=True)
class RunningAgent:
    """A real agent serving on loopback, and a client holding its token."""

    url: str
    token: str
    client: AgentClient


StartAgent = Callable[[str, EngineConfig], Awaitable[RunningAgent]]


@pytest.fixture
async def start_agent() -> AsyncIterator[StartAgent]:
    """Start the real agent app for (engine, config) on a free loopback port; stopped after the test."""
    runners: list[web.AppRunner] = []
    clients: list[AgentClient] = []

    async def start(engine: str, config: EngineConfig) -> RunningAgent:
        token = secrets.token_urlsafe(24)
        runner = web.AppRunner(make_app(make_driver(engine, config), token), access_log=None)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"http://127.0.0.1:{port}"
        client = AgentClient(url, token, timeout=60)
        clients.append(client)
        return RunningAgent(url, token, client)

    yield start
    for client in clients:
        await client.close()
    for runner in runners:
        await runner.cleanup()


T = TypeVar("T")


async def read_until(
    read: Callable[[], Awaitable[T]], found: Callable[[T], bool], what: str, tries: int = 300
) -> T:
    """Call ``read`` (an agent request) every 0.1 s until ``found`` holds for its reply, which is returned
    (an engine writes its log a moment after the statement); fail naming ``what``."""
    for _ in range(tries):
        reply = await read()
        if found(reply):
            return reply
        await asyncio.sleep(0.1)
    raise AssertionError(f"never found: {what}")


from tests.integration.conftest_backup import *  # noqa: E402, F403  (MinIO, backup API helpers)
from tests.integration.conftest_ring import *  # noqa: E402, F403  (a three-node Cassandra ring)
from tests.integration.conftest_servers_mysql import *  # noqa: E402, F403  (real MySQL 9.7 and 8.0.31)
from tests.integration.conftest_servers_nosql import *  # noqa: E402, F403  (Cassandra, mongod, their agents)
