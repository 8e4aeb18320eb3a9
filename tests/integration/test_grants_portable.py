"""Portable grants mean the same on every engine, whoever creates the tables and whenever (issue 23).

Through the agent's HTTP API, on real servers: users are granted FIRST (readers before the users who
create), tables are created AFTERWARDS by other users, and then each user is checked as itself:
`read` reads every table and cannot write; `readWrite` reads and writes every table (PostgreSQL: also
the sequences behind `serial` keys). Then `read` is revoked and a `readWrite` user is downgraded to
`read`, more tables are created, and everything is checked again: a revoked user reads nothing, the
downgraded one reads everything and writes nothing, not even the table it created itself.

docs/agent-api.md ("Portable grants") has the per-engine mapping these tests hold it to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import Grant, Privilege
from tests.integration.conftest import StartAgent
from tests.integration.grants_engines import (
    CassandraActions,
    Denied,
    MongoDBActions,
    MySQLActions,
    PostgreSQLActions,
    UserActions,
)

DB = "grants_orders"
READER, APP, APP2, OWNER = "gp_reader", "gp_app", "gp_app2", "gp_owner"
PASSWORD = {READER: "Reader-pw-1", APP: "App-pw-1", APP2: "App2-pw-1", OWNER: "Owner-pw-1"}

# engine -> (the fixture that starts its real server, the adapter acting as its users)
ENGINES: dict[str, tuple[str, Callable[[Any], UserActions]]] = {
    "mariadb": ("mariadb", MySQLActions),
    "mysql": ("mysql", lambda server: MySQLActions(server, engine="mysql")),  # MySQL 9.7
    "postgresql": ("postgresql", PostgreSQLActions),
    "cassandra": ("cassandra_server", CassandraActions),
    "mongodb": ("mongod_server", MongoDBActions),  # mongod 6.0.5, with authorization
}


@pytest.fixture(params=sorted(ENGINES))
def actions(request: pytest.FixtureRequest) -> Iterator[UserActions]:
    fixture, adapter = ENGINES[request.param]
    acting = adapter(request.getfixturevalue(fixture))
    yield acting
    acting.close()


async def grant(agent: AgentClient, user: str, level: Privilege | None) -> None:
    grants = [] if level is None else [Grant(database=DB, privileges=[level])]
    await agent.ensure_user(user, PASSWORD[user], grants)


def can_read(actions: UserActions, user: str, table: str) -> bool:
    try:
        actions.count(user, PASSWORD[user], DB, table)
    except Denied:
        return False
    return True


def can_write(actions: UserActions, user: str, table: str) -> bool:
    try:
        actions.insert(user, PASSWORD[user], DB, table)
    except Denied:
        return False
    return True


def create(actions: UserActions, user: str, table: str) -> str:
    actions.create_table(user, PASSWORD[user], DB, table)
    actions.insert(user, PASSWORD[user], DB, table)
    return table


def rights(actions: UserActions, tables: list[str]) -> dict[str, dict[str, tuple[bool, bool]]]:
    """user -> table -> (can read, can write), as each user finds out by trying."""
    users = (READER, APP, APP2, OWNER)
    return {u: {t: (can_read(actions, u, t), can_write(actions, u, t)) for t in tables} for u in users}


async def test_grants_hold_for_tables_created_later_by_other_users_and_revocation_removes_them(
    actions: UserActions, start_agent: StartAgent
) -> None:
    agent = (await start_agent(actions.engine, actions.config())).client
    await agent.ensure_database(DB)
    try:
        await _check(actions, agent)
    finally:  # the servers are shared by the session: leave them as found
        for user in PASSWORD:
            with contextlib.suppress(AgentError):
                await agent.drop_user(user)
        await agent.drop_database(DB)


async def _check(actions: UserActions, agent: AgentClient) -> None:
    # Granted first, readers before the users who create (the order the operator may well use).
    await grant(agent, READER, Privilege.READ)
    await grant(agent, APP, Privilege.READ_WRITE)
    await grant(agent, APP2, Privilege.READ_WRITE)
    await grant(agent, OWNER, Privilege.ADMIN)

    # Created afterwards, by users other than the agent (and other than the reader).
    tables = [create(actions, OWNER, "by_owner")]
    if actions.read_write_creates:
        tables += [create(actions, APP, "by_app"), create(actions, APP2, "by_app2")]

    everything = {t: (True, True) for t in tables}
    assert rights(actions, tables) == {
        READER: {t: (True, False) for t in tables},
        APP: everything,
        APP2: everything,
        OWNER: everything,
    }

    # Revoke read; downgrade APP2 to read. Then more tables, created after the change.
    await grant(agent, READER, None)
    await grant(agent, APP2, Privilege.READ)
    tables.append(create(actions, OWNER, "after_owner"))
    if actions.read_write_creates:
        tables.append(create(actions, APP, "after_app"))

    everything = {t: (True, True) for t in tables}
    assert rights(actions, tables) == {
        READER: {t: (False, False) for t in tables},
        APP: everything,
        APP2: {t: (True, False) for t in tables},  # its own table by_app2 included
        OWNER: everything,
    }

    # Granted again: every table is readable again, including those created while it was revoked.
    await grant(agent, READER, Privilege.READ)
    assert {t: can_read(actions, READER, t) for t in tables} == dict.fromkeys(tables, True)
