"""The agent's HTTP API against real MariaDB 10.11 servers, checked with the engine's own client."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pymysql
import pytest

from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import Grant, Privilege, Role
from tests.integration.conftest import StartAgent
from tests.integration.servers.mariadb import ADMIN, MariaDBServer

HOSTILE = "x'; DROP DATABASE y; --"


def databases(server: MariaDBServer) -> set[str]:
    return {row[0] for row in server.query("SHOW DATABASES")}


async def test_database_put_is_idempotent_and_delete_of_missing_is_404(
    mariadb: MariaDBServer, start_agent: StartAgent
) -> None:
    agent = (await start_agent("mariadb", mariadb.engine_config())).client
    assert (await agent.ensure_database("shop")).detail == "created"
    assert (await agent.ensure_database("shop")).detail == "exists"
    assert "shop" in databases(mariadb)
    assert "shop" in await agent.list_databases()
    await agent.drop_database("shop")
    assert "shop" not in databases(mariadb)
    with pytest.raises(AgentError) as missing:
        await agent.drop_database("shop")
    assert (missing.value.status, missing.value.reply.error) == (404, "not_found")


async def test_grants_allow_exactly_what_they_say(mariadb: MariaDBServer, start_agent: StartAgent) -> None:
    agent = (await start_agent("mariadb", mariadb.engine_config())).client
    for name in ("gx", "gy"):
        await agent.ensure_database(name)
        mariadb.query(f"CREATE TABLE IF NOT EXISTS {name}.t (id INT PRIMARY KEY)")
    mariadb.query("INSERT IGNORE INTO gx.t VALUES (1)")

    read = [Grant(database="gx", privileges=[Privilege.READ])]
    assert (await agent.ensure_user("reader", "Secret-r1", read)).detail == "created"
    grants_once = mariadb.query("SHOW GRANTS FOR 'reader'@'%'")
    assert (await agent.ensure_user("reader", "Secret-r1", read)).detail == "updated"
    assert mariadb.query("SHOW GRANTS FOR 'reader'@'%'") == grants_once  # PUT twice: same state

    reader = mariadb.connect("reader", "Secret-r1")
    with reader.cursor() as cur:
        cur.execute("SELECT id FROM gx.t")
        assert cur.fetchall() == ((1,),)
        with pytest.raises(pymysql.err.OperationalError, match="INSERT command denied"):
            cur.execute("INSERT INTO gx.t VALUES (2)")
        cur.execute("SHOW DATABASES")
        visible = {row[0] for row in cur.fetchall()}
        assert "gx" in visible and "gy" not in visible
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("SELECT id FROM gy.t")
    reader.close()

    await agent.ensure_user("writer", "Secret-w1", [Grant(database="gx", privileges=[Privilege.READ_WRITE])])
    writer = mariadb.connect("writer", "Secret-w1")
    with writer.cursor() as cur:
        cur.execute("INSERT INTO gx.t VALUES (3)")
    writer.close()

    # Downgrading replaces the grants: readWrite -> read revokes INSERT; moving to gy drops gx.
    await agent.ensure_user("writer", "Secret-w2", read)
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        mariadb.connect("writer", "Secret-w1")  # the password changed too
    writer = mariadb.connect("writer", "Secret-w2")
    with writer.cursor() as cur, pytest.raises(pymysql.err.OperationalError, match="INSERT command denied"):
        cur.execute("INSERT INTO gx.t VALUES (4)")
    writer.close()
    await agent.ensure_user("writer", "Secret-w2", [Grant(database="gy", privileges=[Privilege.ADMIN])])
    grants = " ".join(row[0] for row in mariadb.query("SHOW GRANTS FOR 'writer'@'%'"))
    assert "`gy`.*" in grants and "`gx`" not in grants

    await agent.drop_user("writer")
    with pytest.raises(AgentError) as missing:
        await agent.drop_user("writer")
    assert missing.value.status == 404


async def test_hostile_names_are_refused_before_any_sql(
    mariadb: MariaDBServer, start_agent: StartAgent
) -> None:
    agent = (await start_agent("mariadb", mariadb.engine_config())).client
    await agent.ensure_database("y")
    before = databases(mariadb)
    for call in (
        agent.ensure_database(HOSTILE),
        agent.drop_database(HOSTILE),
        agent.ensure_user(HOSTILE, "pw-123456", []),
        agent.ensure_user("ok", "pw-123456", [Grant(database=HOSTILE, privileges=[Privilege.READ])]),
        agent.drop_database("mysql"),
    ):
        with pytest.raises(AgentError) as refused:
            await call
        assert refused.value.status == 400
    assert databases(mariadb) == before
    assert not mariadb.query("SELECT User FROM mysql.user WHERE User IN ('ok', %s)", (HOSTILE,))


async def test_replication_source_wait_fence_promote(
    mariadb_factory: Callable[[], MariaDBServer], start_agent: StartAgent
) -> None:
    primary, replica = mariadb_factory(), mariadb_factory()
    p_agent = (await start_agent("mariadb", primary.engine_config())).client
    r_agent = (await start_agent("mariadb", replica.engine_config())).client

    await p_agent.ensure_database("orders")
    await p_agent.ensure_user(
        "app", "App-pass-1", [Grant(database="orders", privileges=[Privilege.READ_WRITE])]
    )
    primary.query("CREATE TABLE orders.o (id INT PRIMARY KEY)")
    primary.query("INSERT INTO orders.o VALUES (1), (2)")

    await r_agent.set_source("127.0.0.1", primary.port, ADMIN, primary.password)
    position = (await p_agent.status()).position
    assert position
    assert (await r_agent.wait_for_position(position, 30)).reached
    assert replica.query("SELECT id FROM orders.o ORDER BY id") == [(1,), (2,)]

    status = await r_agent.status()
    assert status.role is Role.REPLICA and status.read_only and status.replication_running
    assert status.position == position and status.source_host == f"127.0.0.1:{primary.port}"
    # A server with a connected replica (a binlog dump thread) reports itself as primary.
    for _ in range(100):
        if (await p_agent.status()).role is Role.PRIMARY:
            break
        await asyncio.sleep(0.1)
    assert (await p_agent.status()).role is Role.PRIMARY

    far = "0-1-999999"
    assert not (await r_agent.wait_for_position(far, 0.5)).reached  # 408 -> reached=False
    with pytest.raises(AgentError) as bad:
        await r_agent.wait_for_position("not-a-gtid", 1)
    assert bad.value.status == 400
    with pytest.raises(AgentError) as readonly:
        await r_agent.ensure_database("local_write")  # an errant transaction on a replica: refused
    assert readonly.value.status == 409

    # Fence the primary: the application account can no longer write there.
    await p_agent.fence()
    app = primary.connect("app", "App-pass-1", database="orders")
    with app.cursor() as cur, pytest.raises(pymysql.err.OperationalError, match="read-only"):
        cur.execute("INSERT INTO orders.o VALUES (3)")
    app.close()
    assert (await p_agent.status()).read_only

    # Promote the replica: replication is gone, writes are accepted, the user came along.
    await r_agent.promote()
    promoted = await r_agent.status()
    assert promoted.role is not Role.REPLICA and not promoted.read_only and not promoted.replication_running
    app = replica.connect("app", "App-pass-1", database="orders")
    with app.cursor() as cur:
        cur.execute("INSERT INTO orders.o VALUES (3)")
    app.close()
    assert (await r_agent.promote()).ok  # idempotent
