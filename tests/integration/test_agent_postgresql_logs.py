"""PostgreSQL's server log through a real agent: the logging collector's CSV files on a real PostgreSQL 15.

The server runs with kubetrove's own log settings (``strategy.LOG_SETTINGS``: collector on, csvlog,
hourly files, UTC) but its own absolute ``log_directory`` outside its datadir, as in a pod. The collector is a
restart-only setting, so the test starts a server of its own and leaves the session's shared one alone.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from kubetrove.agent.client import AgentClient
from kubetrove.agent.engines.postgresql import logs
from kubetrove.agent.protocol import SlowLogReply
from kubetrove.datastores.postgresql.strategy import LOG_SETTINGS
from tests.integration.conftest import StartAgent, read_until
from tests.integration.servers.postgresql import ADMIN, PostgreSQLServer, start_postgresql


@dataclass
class LoggingServer:
    """A server and the directory of its CSV log."""

    server: PostgreSQLServer
    logs: Path

    def files(self) -> list[Path]:
        return sorted(self.logs.glob("*.csv"))


def _logging(*overrides: str) -> Iterator[LoggingServer]:
    """A PostgreSQL 15 of the test's own, logging as kubetrove's configuration makes it (LOG_SETTINGS)
    into an absolute directory outside its datadir, as in a pod; ``overrides`` (name=value) win."""
    directory = Path(tempfile.mkdtemp(prefix="kt-pglog-"))
    shutil.chown(directory, "postgres", "postgres")
    names = {o.partition("=")[0] for o in overrides}
    settings = [f"{n}={v.strip(chr(39))}" for n, v in LOG_SETTINGS if n not in names and n != "log_directory"]
    server = start_postgresql(settings=(*settings, f"log_directory={directory}", *overrides))
    yield LoggingServer(server, directory)
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def logging_postgresql() -> Iterator[LoggingServer]:
    """The product's hourly files."""
    yield from _logging()


async def test_slow_statements_from_the_csv_log(
    logging_postgresql: LoggingServer, start_agent: StartAgent
) -> None:
    server = logging_postgresql.server
    agent: AgentClient = (await start_agent("postgresql", server.engine_config())).client
    # The user's parameter, through the agent's allow-list as the operator sends it.
    applied = await agent.apply_parameters({"log_min_duration_statement": "100"})
    assert applied.applied == ["log_min_duration_statement"]

    slow, quick, bound = (f"kt-{kind}-{secrets.token_hex(6)}" for kind in ("slow", "quick", "bound"))
    server.query(f"SELECT pg_sleep(0.2) /* {slow} */")
    server.query(f"SELECT 1 /* {quick} */")  # under the threshold: never in the slow log
    with server.connect() as conn:  # the extended protocol: "execute <unnamed>: ..."
        conn.execute(f"SELECT pg_sleep(%s) /* {bound} */", (0.2,))

    reply = await read_until(
        lambda: agent.slow_log(tail=1000), lambda r: any(bound in e.query for e in r.entries), bound
    )
    (entry,) = [e for e in reply.entries if slow in e.query]
    assert entry.query == f"SELECT pg_sleep(0.2) /* {slow} */"
    assert entry.duration_seconds >= 0.2 and entry.user == ADMIN and entry.database == "postgres"
    (executed,) = [e for e in reply.entries if bound in e.query]
    assert executed.query.startswith("execute <unnamed>: SELECT pg_sleep($1)")
    assert not [e for e in reply.entries if quick in e.query]
    assert [e.time for e in reply.entries] == sorted(e.time for e in reply.entries)

    # Bounded and newest last; since leaves out what came before.
    newest = await agent.slow_log(tail=1)
    assert [e.query for e in newest.entries] == [executed.query]
    later = await agent.slow_log(since=entry.time + timedelta(microseconds=1), tail=1000)
    assert [e.query for e in later.entries] == [executed.query]
    assert (await agent.slow_log(since=executed.time + timedelta(microseconds=1))).entries == []


async def test_error_log_from_the_csv_log_with_the_password_redacted(
    logging_postgresql: LoggingServer, start_agent: StartAgent
) -> None:
    server = logging_postgresql.server
    agent = (await start_agent("postgresql", server.engine_config())).client
    secret = f"S3cret-{secrets.token_hex(8)}"
    with pytest.raises(psycopg.errors.ReservedName):  # logged with its statement (log_min_error_statement)
        server.query(f"CREATE ROLE pg_kt_refused LOGIN PASSWORD '{secret}'")

    reply = await read_until(
        lambda: agent.error_log(tail=1000),
        lambda r: any("pg_kt_refused" in e.message for e in r.entries),
        "the refused CREATE ROLE",
    )
    assert secret not in reply.model_dump_json()
    (refused,) = [e for e in reply.entries if "pg_kt_refused" in e.message]
    assert refused.level == "ERROR" and refused.time is not None
    assert refused.message.startswith('[42939] role name "pg_kt_refused" is reserved')
    assert "STATEMENT: CREATE ROLE pg_kt_refused LOGIN PASSWORD '***'" in refused.message
    # The positive control: the server's own file holds the password; only the agent's redaction hid it.
    files = logging_postgresql.files()
    assert files and any(secret in f.read_text() for f in files)
    # The startup records are there too, oldest first, each with its severity.
    assert any(e.message == "database system is ready to accept connections" for e in reply.entries)
    assert all(e.level for e in reply.entries)
    assert [e.time for e in reply.entries] == sorted(e.time for e in reply.entries)  # type: ignore[type-var]
    newest = await agent.error_log(tail=1)
    assert len(newest.entries) == 1 and newest.entries[0].time >= refused.time  # type: ignore[operator]
    after = await agent.error_log(since=refused.time + timedelta(microseconds=1), tail=1000)
    assert all("pg_kt_refused" not in e.message for e in after.entries)


@pytest.fixture
def rotating_postgresql() -> Iterator[LoggingServer]:
    """A file per second: pg_rotate_logfile() then starts a new file (with the product's hourly names a
    rotation within the hour reopens the same one)."""
    yield from _logging("log_filename=postgresql-%H%M%S.log")


def new_file(logging: LoggingServer) -> None:
    """Rotate until the collector writes to a file it has not written before."""
    before = set(logging.files())
    for _ in range(50):
        logging.server.query("SELECT pg_rotate_logfile()")
        if set(logging.files()) - before:
            return
        time.sleep(0.1)
    raise AssertionError("the collector never started a new file")


async def test_tail_and_since_across_rotated_files_growing_windows_and_the_read_budget(
    rotating_postgresql: LoggingServer, start_agent: StartAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = rotating_postgresql.server
    agent = (await start_agent("postgresql", server.engine_config())).client
    await agent.apply_parameters({"log_min_duration_statement": "100"})
    markers = [f"kt-{n}-{secrets.token_hex(4)}" for n in ("a", "b", "c")]
    for i, marker in enumerate(markers):
        if i:
            new_file(rotating_postgresql)
        server.query(f"SELECT pg_sleep(0.15) /* {marker} */")

    def texts(reply: SlowLogReply) -> list[str]:
        return [
            next(m for m in markers if m in e.query)
            for e in reply.entries
            if any(m in e.query for m in markers)
        ]

    # Windows of 300 bytes at first: each file is read again, larger, until it holds what is asked.
    monkeypatch.setattr(logs, "FIRST_WINDOW", 300)
    everything = await read_until(lambda: agent.slow_log(), lambda r: len(texts(r)) == 3, "3 statements")
    assert texts(everything) == markers  # oldest first, over three files
    assert len(rotating_postgresql.files()) >= 3
    assert texts(await agent.slow_log(tail=2)) == markers[1:]
    second = next(e for e in everything.entries if markers[1] in e.query)
    assert texts(await agent.slow_log(since=second.time)) == markers[1:]
    started = (await agent.error_log(tail=1000)).entries  # the oldest file's first records, far back
    assert any(e.message == "database system is ready to accept connections" for e in started)

    # The agent reads at most READ_BUDGET bytes, newest first: with the newest file's size, only it.
    newest = max(rotating_postgresql.files(), key=lambda f: f.stat().st_mtime)
    monkeypatch.setattr(logs, "READ_BUDGET", newest.stat().st_size)
    assert texts(await agent.slow_log()) == markers[2:]
