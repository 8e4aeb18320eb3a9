"""The agent's HTTP API against real MySQL servers, 9.7 LTS and 8.0.31, checked with the engine's own client.

Where the two lines differ (statement names, ``caching_sha2_password`` on a replication channel without
TLS, which needs ``GET_SOURCE_PUBLIC_KEY``), the test runs on both.
"""

from __future__ import annotations

import asyncio
import re

import pymysql
import pytest

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import Grant, Privilege, Role
from tests.integration.conftest import StartAgent
from tests.integration.conftest_servers_mysql import MySQLFactory
from tests.integration.servers.mysql import MySQLServer, restart_mysql

HOSTILE = "x'; DROP DATABASE y; --"
BOTH = pytest.mark.parametrize("version", ["9.7", "8.0"])


@pytest.fixture
def server(request: pytest.FixtureRequest, version: str) -> MySQLServer:
    """The session's shared server of ``version``."""
    return request.getfixturevalue("mysql" if version == "9.7" else "mysql80")  # type: ignore[no-any-return]


async def agent_for(start_agent: StartAgent, server: MySQLServer) -> AgentClient:
    return (await start_agent("mysql", server.engine_config())).client


def databases(server: MySQLServer) -> set[str]:
    return {row[0] for row in server.query("SHOW DATABASES")}


def gtid_executed(server: MySQLServer) -> str:
    return re.sub(r"\s+", "", server.query("SELECT @@GLOBAL.gtid_executed")[0][0])


@BOTH
async def test_status_reports_version_and_gtid_executed(server: MySQLServer, start_agent: StartAgent) -> None:
    agent = await agent_for(start_agent, server)
    status = await agent.status()
    assert status.engine == "mysql" and status.version.startswith(server.version)
    assert status.role is Role.STANDALONE and not status.read_only and status.healthy
    assert status.connections is not None and status.connections >= 1
    await agent.ensure_database("st")  # a transaction: gtid_executed grows
    after = await agent.status()
    assert after.position == gtid_executed(server)
    uuid = server.query("SELECT @@server_uuid")[0][0]
    assert re.fullmatch(rf"{uuid}:1(-\d+)?", after.position), after.position


async def test_database_put_is_idempotent_and_delete_of_missing_is_404(
    mysql: MySQLServer, start_agent: StartAgent
) -> None:
    agent = await agent_for(start_agent, mysql)
    assert (await agent.ensure_database("shop")).detail == "created"
    assert (await agent.ensure_database("shop")).detail == "exists"
    assert "shop" in databases(mysql) and "shop" in await agent.list_databases()
    assert not {"mysql", "sys", "performance_schema", "information_schema"} & set(
        await agent.list_databases()
    )
    charset = mysql.query(
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='shop'"
    )
    assert charset == [("utf8mb4",)]
    await agent.drop_database("shop")
    assert "shop" not in databases(mysql)
    with pytest.raises(AgentError) as missing:
        await agent.drop_database("shop")
    assert (missing.value.status, missing.value.reply.error) == (404, "not_found")


@BOTH
async def test_grants_allow_exactly_what_they_say(server: MySQLServer, start_agent: StartAgent) -> None:
    agent = await agent_for(start_agent, server)
    # ``_`` is a wildcard in GRANT: g_x must not also open gyx (the driver escapes it).
    for name in ("g_x", "gyx"):
        await agent.ensure_database(name)
        server.query(f"CREATE TABLE IF NOT EXISTS {name}.t (id INT PRIMARY KEY)")
    server.query("INSERT IGNORE INTO g_x.t VALUES (1)")

    read = [Grant(database="g_x", privileges=[Privilege.READ])]
    assert (await agent.ensure_user("reader", "Secret-r1", read)).detail == "created"
    grants_once = server.query("SHOW GRANTS FOR 'reader'@'%'")
    assert (await agent.ensure_user("reader", "Secret-r1", read)).detail == "updated"
    assert server.query("SHOW GRANTS FOR 'reader'@'%'") == grants_once  # PUT twice: same state
    plugin = server.query("SELECT plugin FROM mysql.user WHERE User = 'reader'")
    assert plugin == [("caching_sha2_password",)]  # the server's default, logged in over TCP below

    reader = server.connect("reader", "Secret-r1")
    with reader.cursor() as cur:
        cur.execute("SELECT id FROM g_x.t")
        assert cur.fetchall() == ((1,),)
        with pytest.raises(pymysql.err.OperationalError, match="INSERT command denied"):
            cur.execute("INSERT INTO g_x.t VALUES (2)")
        cur.execute("SHOW DATABASES")
        visible = {row[0] for row in cur.fetchall()}
        assert "g_x" in visible and "gyx" not in visible
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("SELECT id FROM gyx.t")
    reader.close()

    await agent.ensure_user("writer", "Secret-w1", [Grant(database="g_x", privileges=[Privilege.READ_WRITE])])
    writer = server.connect("writer", "Secret-w1")
    with writer.cursor() as cur:
        cur.execute("INSERT INTO g_x.t VALUES (3)")
        cur.execute("CREATE TABLE g_x.w (id INT PRIMARY KEY)")
        with pytest.raises(pymysql.err.OperationalError, match="denied"):
            cur.execute("INSERT INTO gyx.t VALUES (3)")
    writer.close()

    # Downgrading replaces the grants: readWrite -> read revokes INSERT; moving to gyx drops g_x.
    await agent.ensure_user("writer", "Secret-w2", read)
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        server.connect("writer", "Secret-w1")  # the password changed too
    writer = server.connect("writer", "Secret-w2")
    with writer.cursor() as cur, pytest.raises(pymysql.err.OperationalError, match="INSERT command denied"):
        cur.execute("INSERT INTO g_x.t VALUES (4)")
    writer.close()
    await agent.ensure_user("writer", "Secret-w2", [Grant(database="gyx", privileges=[Privilege.ADMIN])])
    grants = " ".join(row[0] for row in server.query("SHOW GRANTS FOR 'writer'@'%'"))
    assert "`gyx`.*" in grants and "g\\_x" not in grants

    await agent.drop_user("writer")
    await agent.drop_user("reader")
    with pytest.raises(AgentError) as missing:
        await agent.drop_user("writer")
    assert missing.value.status == 404


async def test_reserved_long_and_hostile_names_are_refused_before_any_sql(
    mysql: MySQLServer, start_agent: StartAgent
) -> None:
    agent = await agent_for(start_agent, mysql)
    await agent.ensure_database("y")
    before = databases(mysql)
    accounts = mysql.query("SELECT User, Host FROM mysql.user ORDER BY 1, 2")
    for call in (
        agent.ensure_database(HOSTILE),
        agent.drop_database(HOSTILE),
        agent.ensure_user(HOSTILE, "pw-123456", []),
        agent.ensure_user("ok", "pw-123456", [Grant(database=HOSTILE, privileges=[Privilege.READ])]),
        agent.drop_database("mysql"),
        agent.drop_database("sys"),
        agent.ensure_user("root", "pw-123456", []),
        agent.ensure_user("mysql.sys", "pw-123456", []),
        agent.drop_user("mysql.session"),
        agent.ensure_user("u" * 33, "pw-123456", []),  # MySQL's user names stop at 32 characters
    ):
        with pytest.raises(AgentError) as refused:
            await call
        assert refused.value.status == 400, refused.value
    assert databases(mysql) == before
    assert mysql.query("SELECT User, Host FROM mysql.user ORDER BY 1, 2") == accounts
    # The longest name MySQL takes works end to end.
    longest = "u" * 32
    assert (await agent.ensure_user(longest, "pw-123456", [])).detail == "created"
    await agent.drop_user(longest)


async def test_grant_on_a_missing_database_is_409_with_no_user_created(
    mysql: MySQLServer, start_agent: StartAgent
) -> None:
    agent = await agent_for(start_agent, mysql)
    with pytest.raises(AgentError) as missing:
        await agent.ensure_user(
            "early", "pw-123456", [Grant(database="nowhere", privileges=[Privilege.READ])]
        )
    assert missing.value.status == 409 and "nowhere" in str(missing.value)
    assert not mysql.query("SELECT User FROM mysql.user WHERE User = 'early'")


@BOTH
async def test_parameters_dynamic_restart_unknown_and_refused_values(
    server: MySQLServer, start_agent: StartAgent
) -> None:
    agent = await agent_for(start_agent, server)
    reply = await agent.apply_parameters(
        {
            "max_connections": "211",
            "long_query_time": "2.5",
            "innodb_buffer_pool_instances": "2",
            "sql_mode": "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",
        }
    )
    assert sorted(reply.applied) == ["long_query_time", "max_connections", "sql_mode"]
    assert reply.needs_restart == ["innodb_buffer_pool_instances"]  # read-only at run time
    assert server.query("SELECT @@GLOBAL.max_connections, @@GLOBAL.long_query_time") == [(211, 2.5)]
    assert server.query("SELECT @@GLOBAL.sql_mode") == [("STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION",)]

    with pytest.raises(AgentError) as unknown:
        await agent.apply_parameters({"no_such_variable": "1"})
    assert unknown.value.status == 400 and "no_such_variable" in str(unknown.value)
    # A value the server refuses is the caller's mistake (4xx), in the server's own words.
    for bad, words in (
        ({"sql_mode": "NOT_A_MODE"}, "can't be set to the value of 'NOT_A_MODE'"),
        ({"max_connections": "lots"}, "Incorrect argument type to variable 'max_connections'"),
    ):
        with pytest.raises(AgentError) as refused:
            await agent.apply_parameters(bad)
        assert refused.value.status == 400 and words in str(refused.value), refused.value
    assert server.query("SELECT @@GLOBAL.max_connections") == [(211,)]


@BOTH
async def test_replication_source_wait_fence_promote(
    version: str, mysql_factory: MySQLFactory, start_agent: StartAgent
) -> None:
    primary, replica = mysql_factory(version), mysql_factory(version)
    p_agent, r_agent = await agent_for(start_agent, primary), await agent_for(start_agent, replica)

    await p_agent.ensure_database("orders")
    await p_agent.ensure_user(
        "app", "App-pass-1", [Grant(database="orders", privileges=[Privilege.READ_WRITE])]
    )
    primary.query("CREATE TABLE orders.o (id INT PRIMARY KEY)")
    primary.query("INSERT INTO orders.o VALUES (1), (2)")
    # A replication account that has never logged in: caching_sha2_password has no cached hash for it,
    # so the replica's first login over a channel without TLS needs the source's RSA public key
    # (GET_SOURCE_PUBLIC_KEY = 1; without it: "Authentication requires secure connection").
    primary.query("CREATE USER repl@'%' IDENTIFIED BY 'Repl-pass-1'")
    primary.query("GRANT REPLICATION SLAVE ON *.* TO repl@'%'")

    await r_agent.set_source("127.0.0.1", primary.port, "repl", "Repl-pass-1")
    position = (await p_agent.status()).position
    assert (await r_agent.wait_for_position(position, 30)).reached
    assert replica.query("SELECT id FROM orders.o ORDER BY id") == [(1,), (2,)]
    assert replica.query("SELECT User FROM mysql.user WHERE User = 'app'") == [("app",)]

    status = await r_agent.status()
    assert status.role is Role.REPLICA and status.read_only and status.replication_running, status
    assert status.healthy and not status.diverged
    assert status.position == position and status.source_host == f"127.0.0.1:{primary.port}"
    assert replica.query("SELECT @@GLOBAL.super_read_only") == [(1,)]
    assert status.received_position == position
    for _ in range(100):  # a server with a connected replica (a binlog dump thread) is the primary
        if (await p_agent.status()).role is Role.PRIMARY:
            break
        await asyncio.sleep(0.1)
    assert (await p_agent.status()).role is Role.PRIMARY

    # GTID sets are partially ordered: a set with a GTID the replica never saw is not reached.
    uuid = primary.query("SELECT @@server_uuid")[0][0]
    assert not (await r_agent.wait_for_position(f"{position},{uuid}:999999", 0.5)).reached
    other = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1"
    assert not (await r_agent.wait_for_position(other, 0.5)).reached
    for bad in ("not-a-gtid", "0-1-5", f"{uuid}:"):
        with pytest.raises(AgentError) as refused:
            await r_agent.wait_for_position(bad, 1)
        assert refused.value.status == 400, bad
    with pytest.raises(AgentError) as readonly:
        await r_agent.ensure_database("local_write")  # an errant transaction on a replica: refused
    assert readonly.value.status == 409

    # Fence the primary with super_read_only: neither the application nor the admin account (which
    # holds SUPER / CONNECTION_ADMIN and bypasses plain read_only) can write.
    await p_agent.fence()
    assert primary.query("SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only") == [(1, 1)]
    app = primary.connect("app", "App-pass-1", database="orders")
    with app.cursor() as cur, pytest.raises(pymysql.err.OperationalError, match=r"read-only|read_only"):
        cur.execute("INSERT INTO orders.o VALUES (3)")
    app.close()
    with pytest.raises(pymysql.err.OperationalError, match=r"super-read-only|super_read_only"):
        primary.query("INSERT INTO orders.o VALUES (3)")
    fenced = await p_agent.status()
    assert fenced.read_only and fenced.position == position  # nothing was written

    # Promote the replica: replication is gone, writes are accepted, the user came along.
    await r_agent.promote()
    promoted = await r_agent.status()
    assert promoted.role is not Role.REPLICA and not promoted.read_only and not promoted.replication_running
    assert replica.query("SELECT @@GLOBAL.read_only, @@GLOBAL.super_read_only") == [(0, 0)]
    assert replica.query("SHOW REPLICA STATUS") == []  # RESET REPLICA ALL forgot the channel
    app = replica.connect("app", "App-pass-1", database="orders")
    with app.cursor() as cur:
        cur.execute("INSERT INTO orders.o VALUES (3)")
    app.close()
    assert (await r_agent.promote()).ok  # idempotent

    # The old primary follows the new one: it has nothing the new primary lacks (it was fenced).
    replica.query("CREATE USER IF NOT EXISTS repl@'%' IDENTIFIED BY 'Repl-pass-1'")
    await p_agent.set_source("127.0.0.1", replica.port, "repl", "Repl-pass-1")
    assert (await p_agent.wait_for_position((await r_agent.status()).position, 30)).reached
    assert primary.query("SELECT id FROM orders.o ORDER BY id") == [(1,), (2,), (3,)]


@BOTH
async def test_a_source_that_lost_transactions_the_replica_has_is_reported_diverged(
    version: str, mysql_factory: MySQLFactory, start_agent: StartAgent
) -> None:
    """The replica holds GTIDs of the source's own uuid that the source no longer has (a source restored
    from an older backup, or a primary whose unsynced tail was lost): the source refuses to stream
    (error 1236, "...has more GTIDs than the source has..."), and the status says diverged.
    """
    primary, replica = mysql_factory(version), mysql_factory(version)
    p_agent, r_agent = await agent_for(start_agent, primary), await agent_for(start_agent, replica)
    primary.query("CREATE USER repl@'%' IDENTIFIED BY 'Repl-pass-1'")
    primary.query("GRANT REPLICATION SLAVE ON *.* TO repl@'%'")
    await p_agent.ensure_database("lost")
    await r_agent.set_source("127.0.0.1", primary.port, "repl", "Repl-pass-1")
    assert (await r_agent.wait_for_position((await p_agent.status()).position, 30)).reached
    await r_agent.stop_replication()
    # The source forgets its history (RESET MASTER was renamed in 8.2 and removed in 8.4).
    primary.query("RESET MASTER" if version == "8.0" else "RESET BINARY LOGS AND GTIDS")
    primary.query("CREATE DATABASE after_reset")
    await r_agent.set_source("127.0.0.1", primary.port, "repl", "Repl-pass-1")
    status = await r_agent.status()
    for _ in range(100):
        if status.diverged:
            break
        await asyncio.sleep(0.1)
        status = await r_agent.status()
    assert status.diverged and not status.healthy and not status.replication_running, status.replication_error
    assert "more GTIDs than the" in (status.replication_error or "")
    assert "after_reset" not in databases(replica)


async def test_an_empty_member_is_cloned_from_its_source_not_replayed(
    mysql_factory: MySQLFactory, start_agent: StartAgent
) -> None:
    """Replaying the binary log from the start skips what the replica's own server_id once wrote (a
    member rebuilt from an empty volume keeps its server_id); the agent clones an empty member instead."""
    clone = ("--plugin-load-add=mysql_clone.so",)
    password = "Shared-admin-1"  # the pods share the root Secret; a clone copies the donor's accounts
    primary = mysql_factory("9.7", clone, password=password)
    p_agent = await agent_for(start_agent, primary)
    await p_agent.ensure_database("cl")
    primary.query("CREATE USER repl@'%' IDENTIFIED BY 'Repl-pass-1'")
    primary.query("GRANT REPLICATION SLAVE, BACKUP_ADMIN ON *.* TO repl@'%'")
    # Rows logged under server_id 99, as if member 99 wrote them when it was the primary (a session takes
    # the global server_id when it connects; every query() is a new connection).
    primary.query("SET GLOBAL server_id = 99")
    primary.query("CREATE TABLE cl.t (id INT PRIMARY KEY)")
    primary.query("INSERT INTO cl.t VALUES (1), (2), (3)")
    primary.query("SET GLOBAL server_id = %s", (primary.server_id,))
    # Member 99 rebuilt from an empty volume. Replaying the binlog, its receiver would drop all of that.
    replica = mysql_factory("9.7", clone, password=password, server_id=99)
    r_agent = await agent_for(start_agent, replica)
    with pytest.raises(AgentError) as restarting:
        await r_agent.set_source("127.0.0.1", primary.port, "repl", "Repl-pass-1")
    assert restarting.value.status == 503 and "clone" in str(restarting.value)
    await asyncio.to_thread(replica.proc.wait, 60)
    assert replica.proc.returncode == 0  # no supervisor: the server shut down to finish the clone
    await asyncio.to_thread(restart_mysql, replica)  # what the kubelet does
    assert replica.query("SELECT id FROM cl.t ORDER BY id") == [(1,), (2,), (3,)]
    await r_agent.set_source("127.0.0.1", primary.port, "repl", "Repl-pass-1")  # now: auto-positioning
    primary.query("INSERT INTO cl.t VALUES (4)")
    assert (await r_agent.wait_for_position((await p_agent.status()).position, 30)).reached
    assert replica.query("SELECT id FROM cl.t ORDER BY id") == [(1,), (2,), (3,), (4,)]
    status = await r_agent.status()
    assert status.role is Role.REPLICA and status.replication_running and status.healthy
