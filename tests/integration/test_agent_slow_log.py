"""GET /v1/logs/slow and /v1/logs/error through a real agent, against real MariaDB, MySQL 9.7 and mongod
(PostgreSQL: test_agent_postgresql_logs.py).

Each test makes the engine log everything (long_query_time 0 / slowms 0), runs a statement carrying a
unique marker, and finds it in the agent's reply; and creates a user with a unique password and checks
that the password never leaves the agent, with a positive control: MariaDB's slow_log holds the
statement as sent (the agent's copy shows it redacted); MongoDB does not profile createUser at all, so a
find whose filter holds a "pwd" (profiled as sent) is the control there. The follow mode (NDJSON) brings
a statement made after the stream opened, and the publisher writes new statements once, redacted, as
JSON lines (from "now": not what came before it). The log settings of the session's shared servers are
put back afterwards.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from kubetrove.agent.client import AgentError
from kubetrove.agent.engine_logs import EngineLogPublisher
from kubetrove.agent.engines.registry import make_driver
from kubetrove.agent.logs import Redactor, setup_engine_log_output
from kubetrove.agent.protocol import (
    ENGINE_LOGGER,
    ENGINE_SLOW_LOGGER,
    NDJSON,
    TOKEN_HEADER,
    Paths,
    SlowLogReply,
    SlowQuery,
    bearer,
)
from tests.integration.conftest import RunningAgent, StartAgent
from tests.integration.conftest_servers_mysql import MySQLFactory
from tests.integration.servers.mariadb import ADMIN
from tests.integration.servers.mongod import Mongod

LOG_SETTINGS = "SELECT @@GLOBAL.log_output, @@GLOBAL.slow_query_log, @@GLOBAL.long_query_time"


@pytest.fixture(params=["mariadb", "mysql"])
def sql_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's shared MariaDB or MySQL 9.7, logging to tables as kubetrove.cnf makes it."""
    server = request.getfixturevalue(request.param)
    log_output, slow_query_log, long_query_time = server.query(LOG_SETTINGS)[0]
    server.query("SET GLOBAL log_output = 'TABLE'")  # render's fixed setting (_mysql_common/config.py)
    yield server
    server.query("SET GLOBAL log_output = %s", (log_output,))
    server.query("SET GLOBAL slow_query_log = %s", (slow_query_log,))
    server.query("SET GLOBAL long_query_time = %s", (long_query_time,))
    server.query("DROP USER IF EXISTS 'slowlog_user'@'%'")


def marked(reply: SlowLogReply, marker: str) -> list[Any]:
    return [e for e in reply.entries if marker in e.query]


async def test_mysql_family_slow_log_through_the_agent(
    sql_server: Any, start_agent: StartAgent, request: pytest.FixtureRequest
) -> None:
    engine = request.node.callspec.params["sql_server"]
    running = await start_agent(engine, sql_server.engine_config())
    agent = running.client
    # The user's parameters, through the agent's allow-list as the operator sends them.
    applied = await agent.apply_parameters({"slow_query_log": "ON", "long_query_time": "0"})
    assert sorted(applied.applied) == ["long_query_time", "slow_query_log"]

    marker = f"kt-slow-{secrets.token_hex(6)}"
    sql_server.query(f"SELECT SLEEP(0.2) /* {marker} */")  # a new connection: long_query_time 0
    secret = f"S3cret-{secrets.token_hex(8)}"
    sql_server.query(f"CREATE USER 'slowlog_user'@'%' IDENTIFIED BY '{secret}'")

    text = await slow_log_text(running)
    assert secret not in text
    reply = SlowLogReply.model_validate_json(text)
    assert reply.engine == engine
    (entry,) = marked(reply, marker)
    assert entry.duration_seconds >= 0.2 and entry.user == ADMIN and entry.rows_examined is not None
    created = [e for e in reply.entries if "CREATE USER 'slowlog_user'" in e.query]
    assert created, "the CREATE USER statement was not logged: the redaction test would prove nothing"
    # MySQL rewrites the statement before its slow log (IDENTIFIED WITH ... AS '<hash>'); MariaDB logs it
    # as sent, so there the table holds the password itself and only the agent's redaction removes it.
    if engine == "mariadb":
        assert "IDENTIFIED BY '***'" in created[0].query
        raw = sql_server.query("SELECT COUNT(*) FROM mysql.slow_log WHERE sql_text LIKE %s", (f"%{secret}%",))
        assert raw[0][0] >= 1
    # Bounded and newest last; since leaves out what came before.
    newest = await agent.slow_log(tail=1)
    assert len(newest.entries) == 1 and newest.entries[0].time >= entry.time
    later = await agent.slow_log(since=entry.time + timedelta(microseconds=1), tail=1000)
    assert marked(later, marker) == [] and all(e.time > entry.time for e in later.entries)

    # A fenced member (every replica, and a cluster member at start) still fills the table.
    fence = "super_read_only" if engine == "mysql" else "read_only"
    fenced = f"kt-fenced-{secrets.token_hex(6)}"
    sql_server.query(f"SET GLOBAL {fence} = ON")
    try:
        sql_server.query(f"SELECT 1 /* {fenced} */")
        assert len(marked(await agent.slow_log(tail=1000), fenced)) == 1
    finally:
        sql_server.query(f"SET GLOBAL {fence} = OFF")
        sql_server.query("SET GLOBAL read_only = OFF")

    # A server that writes its slow log to a file: 409, naming log_output.
    sql_server.query("SET GLOBAL log_output = 'FILE'")
    with pytest.raises(AgentError) as refused:
        await agent.slow_log()
    assert refused.value.status == 409 and "log_output=FILE" in refused.value.reply.detail


async def test_bad_bounds_are_400_from_a_real_agent(mariadb: Any, start_agent: StartAgent) -> None:
    agent = await start_agent("mariadb", mariadb.engine_config())
    for query in ("tail=0", "tail=1001", "tail=x", "since=yesterday", "since=2026-12-06T20:00:00"):
        status, text = await raw_slow_log(agent, query)
        assert status == 400 and '"error":"bad_request"' in text, (query, text)


async def test_error_log_mysql_reads_the_performance_schema_mariadb_is_501(
    mysql: Any, mysql_factory: MySQLFactory, mariadb: Any, start_agent: StartAgent
) -> None:
    # The test servers run without the Performance Schema (memory); the product's default is ON.
    plain = await start_agent("mysql", mysql.engine_config())
    with pytest.raises(AgentError) as refused:
        await plain.client.error_log()
    assert refused.value.status == 409 and "performance_schema" in refused.value.reply.detail

    server = mysql_factory("9.7", extra=("--performance-schema=ON",))
    agent = (await start_agent("mysql", server.engine_config())).client
    reply = await agent.error_log(tail=5)
    assert 1 <= len(reply.entries) <= 5
    assert all(e.time is not None and e.level for e in reply.entries)
    assert [e.time for e in reply.entries] == sorted(e.time for e in reply.entries)
    everything = await agent.error_log(tail=1000)
    assert any("ready for connections" in e.message for e in everything.entries)

    maria = (await start_agent("mariadb", mariadb.engine_config())).client
    with pytest.raises(AgentError) as unsupported:
        await maria.error_log()
    assert unsupported.value.status == 501 and "stderr" in unsupported.value.reply.detail


async def test_postgresql_without_its_csv_log_is_409_naming_the_settings(
    postgresql: Any, start_agent: StartAgent
) -> None:
    # The session's shared server logs to stderr (the harness's settings); kubetrove's configuration
    # writes CSV files, read in test_agent_postgresql_logs.py.
    agent = (await start_agent("postgresql", postgresql.engine_config())).client
    for read in (agent.slow_log, agent.error_log):
        with pytest.raises(AgentError) as refused:
            await read()
        assert refused.value.status == 409 and "logging_collector=off" in refused.value.reply.detail


@pytest.fixture
def profiled_db(mongod_server: Mongod) -> Iterator[str]:
    """A database of the shared mongod whose every operation is profiled (level 1, slowms 0 below)."""
    name = f"slowlog{secrets.token_hex(3)}"
    with mongod_server.client() as client:
        client[name].command("profile", 1)
        yield name
        # mongod's defaults: the threshold and the sample rate are server-wide, and other tests share it.
        client[name].command("profile", 0, slowms=100, sampleRate=1.0)
        client.drop_database(name)


async def test_mongodb_profile_through_the_agent(
    mongod_server: Mongod, profiled_db: str, start_agent: StartAgent
) -> None:
    running = await start_agent("mongodb", mongod_server.engine_config())
    agent = running.client
    # Every operation, none sampled away: the sample rate is server-wide and another test of this
    # session's shared mongod may have left it below 1 (a profiled op is then kept at random).
    applied = await agent.apply_parameters(
        {"operationProfiling.slowOpThresholdMs": "0", "operationProfiling.slowOpSampleRate": "1"}
    )
    assert applied.applied == ["operationProfiling.slowOpSampleRate", "operationProfiling.slowOpThresholdMs"]

    marker = f"kt-slow-{secrets.token_hex(6)}"
    secret = f"S3cret-{secrets.token_hex(8)}"
    with mongod_server.client() as client:
        db = client[profiled_db]
        settings = db.command("profile", -1)
        assert (settings["was"], settings["slowms"], settings["sampleRate"]) == (1, 0, 1.0)
        db["orders"].insert_many([{"n": i} for i in range(20)])
        assert len(list(db["orders"].find({"n": {"$gte": 10}}, comment=marker))) == 10
        db.command("createUser", "slowlog_user", pwd=secret, roles=[])  # mongod does not profile it
        # A password in a filter: mongod profiles it as sent (checked), the agent must redact it.
        in_filter, marker2 = f"S3cret-{secrets.token_hex(8)}", f"kt-pwd-{secrets.token_hex(6)}"
        assert db["accounts"].find_one({"pwd": in_filter}, comment=marker2) is None
        assert db["system.profile"].count_documents({"command.filter.pwd": in_filter}) == 1

    text = await slow_log_text(running)
    assert secret not in text and in_filter not in text
    reply = SlowLogReply.model_validate_json(text)
    (entry,) = marked(reply, marker)
    assert entry.database == profiled_db and entry.rows_examined == 20
    assert entry.user is not None and entry.user.endswith("@admin")
    assert [e.time for e in reply.entries] == sorted(e.time for e in reply.entries)
    (redacted,) = marked(reply, marker2)
    assert '"filter": {"pwd": "***"}' in redacted.query
    assert len((await agent.slow_log(tail=1)).entries) == 1

    # mongod's own log, from memory: it logged the connections made above.
    log = await agent.error_log(tail=1000)
    assert 1 <= len(log.entries) <= 1000 and all(e.level for e in log.entries)
    assert any("[NETWORK]" in e.message for e in log.entries)
    assert secret not in log.model_dump_json()


async def raw_slow_log(agent: RunningAgent, query: str) -> tuple[int, str]:
    """GET /v1/logs/slow?<query>: its status and text, byte for byte what leaves the agent."""
    headers = {TOKEN_HEADER: bearer(agent.token)}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{agent.url}{Paths.LOGS_SLOW}?{query}", headers=headers) as resp,
    ):
        return resp.status, await resp.text()


async def slow_log_text(agent: RunningAgent) -> str:
    """The newest 1000 entries as text; the reply must be a 200."""
    status, text = await raw_slow_log(agent, "tail=1000")
    assert status == 200, text
    return text


async def test_follow_streams_a_statement_made_after_the_stream_opened(
    sql_server: Any, start_agent: StartAgent, request: pytest.FixtureRequest
) -> None:
    running = await start_agent(request.node.callspec.params["sql_server"], sql_server.engine_config())
    await running.client.apply_parameters({"slow_query_log": "ON", "long_query_time": "0"})
    marker, secret = f"kt-follow-{secrets.token_hex(6)}", f"S3cret-{secrets.token_hex(8)}"
    headers = {TOKEN_HEADER: bearer(running.token)}
    url = f"{running.url}{Paths.LOGS_SLOW}?tail=1&follow=true"
    seen: list[str] = []
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        assert resp.status == 200 and resp.content_type == NDJSON
        # Made after the stream opened: only the follow mode can bring them.
        sql_server.query(f"SELECT SLEEP(0.3) /* {marker} */")
        sql_server.query(f"CREATE USER 'slowlog_user'@'%' IDENTIFIED BY '{secret}'")
        while not any(marker in line for line in seen) or not any("slowlog_user" in line for line in seen):
            seen.append((await asyncio.wait_for(resp.content.readline(), timeout=30)).decode())
    assert all(secret not in line for line in seen)
    (entry,) = [SlowQuery.model_validate_json(line) for line in seen if marker in line]
    assert entry.duration_seconds >= 0.3
    assert len([line for line in seen if marker in line]) == 1  # each entry once


async def test_the_publisher_writes_new_slow_statements_once_on_stdout(
    sql_server: Any, start_agent: StartAgent, request: pytest.FixtureRequest
) -> None:
    engine = request.node.callspec.params["sql_server"]
    running = await start_agent(engine, sql_server.engine_config())
    await running.client.apply_parameters({"slow_query_log": "ON", "long_query_time": "0"})
    stdout = io.StringIO()
    handler = setup_engine_log_output(Redactor(), stdout)
    try:
        before = f"kt-before-{secrets.token_hex(6)}"
        sql_server.query(f"SELECT 1 /* {before} */")
        publisher = EngineLogPublisher(make_driver(engine, sql_server.engine_config()), Redactor(), 10)
        await publisher.publish_once()  # from now: what came before (``before``) is not replayed
        marker, secret = f"kt-pub-{secrets.token_hex(6)}", f"S3cret-{secrets.token_hex(8)}"
        sql_server.query(f"SELECT SLEEP(0.2) /* {marker} */")
        sql_server.query(f"CREATE USER 'slowlog_user'@'%' IDENTIFIED BY '{secret}'")
        assert await publisher.publish_once() >= 2
        await publisher.publish_once()
    finally:
        logging.getLogger(ENGINE_LOGGER).removeHandler(handler)
    text = stdout.getvalue()
    assert before not in text and secret not in text
    published = [json.loads(line) for line in text.splitlines()]
    (entry,) = [p for p in published if marker in p["query"]]  # once, though read three times
    assert entry["logger"] == ENGINE_SLOW_LOGGER and entry["engine"] == engine
    assert entry["duration_seconds"] >= 0.2 and entry["user"] == ADMIN
    assert any("CREATE USER 'slowlog_user'" in p["query"] for p in published)
