"""Cassandra's log through a real agent: ``system_views.system_logs`` of a real Cassandra 5.0 node.

The node runs with the image's logback.xml (``tests/integration/servers/cassandra.py`` reads it), which
declares the VirtualTableAppender and MonitoringTask's DEBUG report; its own node, because
``slow_query_log_timeout`` is a restart (1 ms here: a filtering scan of a few thousand rows is slow).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import ErrorLogReply, SlowLogReply
from tests.integration.conftest import StartAgent, read_until
from tests.integration.servers import cassandra


@pytest.fixture(scope="module")
def slow_logging_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cassandra.CassandraServer]:
    server = cassandra.start(tmp_path_factory.mktemp("cassandra-logs"), extra="slow_query_log_timeout: 1ms\n")
    yield server
    server.stop()


async def test_slow_reads_and_the_log_from_the_virtual_table(
    slow_logging_node: cassandra.CassandraServer, start_agent: StartAgent
) -> None:
    node = slow_logging_node
    config = EngineConfig(port=node.port, user=node.user, password=node.password)
    agent = (await start_agent("cassandra", config)).client
    marker = f"kt-slow-{secrets.token_hex(4)}"
    with node.session() as session:
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS shop"
            " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute("CREATE TABLE IF NOT EXISTS shop.t (k int, c int, v text, PRIMARY KEY (k, c))")
        insert = session.prepare("INSERT INTO shop.t (k, c, v) VALUES (?, ?, ?)")
        for i in range(3000):
            session.execute(insert, (i % 10, i, "x" * 100))
        session.execute(f"SELECT * FROM shop.t WHERE v = '{marker}' ALLOW FILTERING")

    def marked(reply: SlowLogReply) -> list[str]:
        return [e.query for e in reply.entries if marker in e.query]

    reply = await read_until(lambda: agent.slow_log(tail=1000), lambda r: bool(marked(r)), marker)
    (entry,) = [e for e in reply.entries if marker in e.query]
    assert entry.query == f"SELECT * FROM shop.t WHERE v = '{marker}' LIMIT 5000 ALLOW FILTERING"
    assert entry.database == "shop" and entry.duration_seconds >= 0.001 and entry.user is None
    assert [e.time for e in reply.entries] == sorted(e.time for e in reply.entries)
    assert len((await agent.slow_log(tail=1)).entries) == 1
    later = await agent.slow_log(since=entry.time + timedelta(milliseconds=1), tail=1000)
    assert marked(later) == [] and all(e.time > entry.time for e in later.entries)

    # The error log: the node's INFO and above, without MonitoringTask's reports; oldest first.
    log: ErrorLogReply = await agent.error_log(tail=1000)
    assert any(e.message.startswith("[StorageService] ") for e in log.entries)
    assert {e.level for e in log.entries} <= {"INFO", "WARN", "ERROR"} and log.entries
    assert not any("operations were slow" in e.message and e.level == "DEBUG" for e in log.entries)
    times = [e.time for e in log.entries]
    assert times == sorted(times)  # type: ignore[type-var]
    newest = await agent.error_log(tail=3)
    assert len(newest.entries) == 3 and newest.entries[-1].time >= log.entries[-1].time  # type: ignore[operator]
    # The console (system.log here) gets MonitoringTask's INFO pointer, never its DEBUG report.
    console = console_text(node)
    assert "Some operations were slow" in console and "operations were slow in the last" not in console


def console_text(node: cassandra.CassandraServer) -> str:
    return Path(node.workdir, "system.log").read_text()
