"""The agent's HTTP API against real PostgreSQL 15 servers, checked with psql's library (psycopg)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
from collections.abc import Callable

import psycopg
import pytest

from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import Grant, Privilege, Role
from tests.integration.conftest import StartAgent
from tests.integration.servers.postgresql import ADMIN, PostgreSQLServer

HOSTILE = "x'; DROP DATABASE y; --"


def databases(server: PostgreSQLServer) -> set[str]:
    return {row[0] for row in server.query("SELECT datname FROM pg_database")}


async def test_database_put_is_idempotent_and_delete_of_missing_is_404(
    postgresql: PostgreSQLServer, start_agent: StartAgent
) -> None:
    agent = (await start_agent("postgresql", postgresql.engine_config())).client
    assert (await agent.ensure_database("shop")).detail == "created"
    assert (await agent.ensure_database("shop")).detail == "exists"
    assert "shop" in databases(postgresql)
    assert await agent.list_databases() == ["shop"]
    await agent.drop_database("shop")
    assert "shop" not in databases(postgresql)
    with pytest.raises(AgentError) as missing:
        await agent.drop_database("shop")
    assert (missing.value.status, missing.value.reply.error) == (404, "not_found")


async def test_grants_allow_exactly_what_they_say(
    postgresql: PostgreSQLServer, start_agent: StartAgent
) -> None:
    agent = (await start_agent("postgresql", postgresql.engine_config())).client
    for name in ("gx", "gy"):
        await agent.ensure_database(name)
        postgresql.query("CREATE TABLE IF NOT EXISTS t (id int PRIMARY KEY)", dbname=name)
    postgresql.query("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", dbname="gx")

    read = [Grant(database="gx", privileges=[Privilege.READ])]
    assert (await agent.ensure_user("reader", "Secret-r1", read)).detail == "created"
    acl = postgresql.query("SELECT relacl::text FROM pg_class WHERE relname = 't'", dbname="gx")
    assert (await agent.ensure_user("reader", "Secret-r1", read)).detail == "updated"
    assert postgresql.query("SELECT relacl::text FROM pg_class WHERE relname = 't'", dbname="gx") == acl

    with postgresql.connect("reader", "Secret-r1", dbname="gx") as conn:
        assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        postgresql.connect("reader", "Secret-r1", dbname="gy")

    # A table created later (by the agent's role) is covered by the default privileges.
    postgresql.query("CREATE TABLE later (id int)", dbname="gx")
    with postgresql.connect("reader", "Secret-r1", dbname="gx") as conn:
        assert conn.execute("SELECT count(*) FROM later").fetchone() == (0,)

    await agent.ensure_user("writer", "Secret-w1", [Grant(database="gx", privileges=[Privilege.READ_WRITE])])
    with postgresql.connect("writer", "Secret-w1", dbname="gx") as conn:
        conn.execute("INSERT INTO t VALUES (3)")
        conn.execute("CREATE TABLE mine (id serial PRIMARY KEY)")  # CREATE on schema public
        conn.execute("INSERT INTO mine DEFAULT VALUES")

    await agent.ensure_user("writer", "Secret-w2", read)  # downgrade: INSERT revoked, password changed
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        postgresql.connect("writer", "Secret-w1", dbname="gx")
    with (
        postgresql.connect("writer", "Secret-w2", dbname="gx") as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("INSERT INTO t VALUES (4)")

    await agent.drop_user("writer")  # it owns table "mine": reassigned, then dropped
    assert not postgresql.query("SELECT 1 FROM pg_roles WHERE rolname = 'writer'")
    with pytest.raises(AgentError) as missing:
        await agent.drop_user("writer")
    assert missing.value.status == 404


async def test_hostile_names_are_refused_before_any_sql(
    postgresql: PostgreSQLServer, start_agent: StartAgent
) -> None:
    agent = (await start_agent("postgresql", postgresql.engine_config())).client
    await agent.ensure_database("y")
    before = databases(postgresql)
    for call in (
        agent.ensure_database(HOSTILE),
        agent.drop_database(HOSTILE),
        agent.ensure_user(HOSTILE, "pw-123456", []),
        agent.ensure_user("ok", "pw-123456", [Grant(database=HOSTILE, privileges=[Privilege.READ])]),
        agent.drop_database("postgres"),
        agent.drop_database("a" * 64),  # longer than NAMEDATALEN - 1: the server would truncate it
    ):
        with pytest.raises(AgentError) as refused:
            await call
        assert refused.value.status == 400
    assert databases(postgresql) == before
    assert not postgresql.query("SELECT 1 FROM pg_roles WHERE rolname IN ('ok', %s)", (HOSTILE,))


async def test_standalone_status_wait_fence_promote_and_source(
    postgresql_factory: Callable[..., PostgreSQLServer], start_agent: StartAgent
) -> None:
    server = postgresql_factory()
    agent = (await start_agent("postgresql", server.engine_config())).client
    await agent.ensure_database("app")
    await agent.ensure_user("app", "App-pass-1", [Grant(database="app", privileges=[Privilege.READ_WRITE])])

    status = await agent.status()
    assert status.role is Role.STANDALONE and not status.read_only and status.healthy
    assert status.position and status.version.startswith("15")
    assert (await agent.wait_for_position(status.position, 5)).reached
    assert not (await agent.wait_for_position("FFFFFFFF/0", 0.3)).reached
    with pytest.raises(AgentError) as bad:
        await agent.wait_for_position("0/0'; --", 1)
    assert bad.value.status == 400

    await agent.fence()
    assert (await agent.status()).read_only
    with (
        server.connect("app", "App-pass-1", dbname="app") as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE t (id int)")
    with pytest.raises(AgentError) as fenced:
        await agent.ensure_database("more")  # the agent's own writes honour the fence too
    assert fenced.value.status == 409

    await agent.promote()  # on a standalone server: lifts the fence
    assert not (await agent.status()).read_only
    with server.connect("app", "App-pass-1", dbname="app") as conn:
        conn.execute("CREATE TABLE t (id int)")

    with pytest.raises(AgentError) as restart:
        await agent.set_source("127.0.0.1", 5432, ADMIN, "pw")
    assert restart.value.status == 409 and "standby.signal" in restart.value.reply.detail
    await agent.promote()


async def test_standby_status_and_promote(
    postgresql_factory: Callable[..., PostgreSQLServer], start_agent: StartAgent
) -> None:
    primary = postgresql_factory()
    primary.query("CREATE TABLE t (id int)")
    standby = postgresql_factory(standby_of=primary)
    p_agent = (await start_agent("postgresql", primary.engine_config())).client
    s_agent = (await start_agent("postgresql", standby.engine_config())).client

    primary.query("INSERT INTO t VALUES (1)")
    position = (await p_agent.status()).position
    assert position
    assert (await s_agent.wait_for_position(position, 30)).reached
    assert standby.query("SELECT id FROM t") == [(1,)]
    for _ in range(100):  # the WAL receiver reports "streaming" shortly after start
        status = await s_agent.status()
        if status.replication_running:
            break
        await asyncio.sleep(0.1)
    assert status.role is Role.REPLICA and status.read_only and status.healthy
    assert status.source_host == f"127.0.0.1:{primary.port}"
    assert (await p_agent.status()).role is Role.PRIMARY

    await s_agent.promote()
    promoted = await s_agent.status()
    assert promoted.role is Role.STANDALONE and not promoted.read_only
    standby.query("INSERT INTO t VALUES (2)")


async def test_status_reports_the_data_volume_df_shows(
    postgresql: PostgreSQLServer, start_agent: StartAgent
) -> None:
    """The agent's --data-dir (here the server's real datadir) measured with statvfs, through the real
    driver's config; a 32 MiB file written next to the data shows in the used bytes."""
    config = dataclasses.replace(postgresql.engine_config(), options={"data_dir": str(postgresql.data)})
    agent = (await start_agent("postgresql", config)).client
    before = (await agent.status()).volume
    assert before is not None
    df = shutil.disk_usage(postgresql.data)
    assert before.capacity_bytes == df.total
    assert 0 < before.used_bytes < before.capacity_bytes
    assert 0 < before.used_fraction < 1
    # The filesystem is the host's, shared with every other test (the e2e tier runs beside this one and
    # deletes whole clusters): a neighbour freeing more than the slack between the two readings hides the
    # file (CI saw used bytes fall by 67 MiB around one 32 MiB write). So a few tries; an agent that does
    # not measure the directory's filesystem fails all of them.
    filler = postgresql.base / "filler"
    grown: list[int] = []
    for _ in range(5):
        before = (await agent.status()).volume
        filler.write_bytes(os.urandom(32 * 1024 * 1024))
        os.sync()
        try:
            after = (await agent.status()).volume
        finally:
            filler.unlink()
            os.sync()
        assert before is not None and after is not None
        grown.append(after.used_bytes - before.used_bytes)
        if 24 * 1024 * 1024 < grown[-1] < 48 * 1024 * 1024:
            break
    else:
        pytest.fail(f"a 32 MiB file never showed in the agent's used bytes: deltas {grown}")
