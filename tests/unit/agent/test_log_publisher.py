"""Following the engine's logs: the cursor's boundary (same-time entries, late entries, floor), and the
publisher that writes new entries to stdout (from "now", never twice, redacted, quiet refusals)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from kubetrove.agent.app import make_app
from kubetrove.agent.engine_logs import LATE_ENTRY_SECONDS, EngineLogPublisher, LogCursor
from kubetrove.agent.engines.base import Conflict, EngineUnavailable, Unsupported
from kubetrove.agent.logs import Redactor, setup_engine_log_output
from kubetrove.agent.main import parse_args
from kubetrove.agent.protocol import ENGINE_LOGGER, ErrorLogEntry, SlowQuery
from tests.unit.agent.fake_driver import FakeDriver

T0 = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def slow(seconds: float, query: str = "SELECT 1") -> SlowQuery:
    return SlowQuery(time=T0 + timedelta(seconds=seconds), duration_seconds=1.5, user="app", query=query)


def test_entries_at_the_boundary_are_handed_on_once_and_identical_ones_each() -> None:
    cursor: LogCursor[SlowQuery] = LogCursor()
    assert cursor.since is None
    first = [slow(0, "a"), slow(1, "b"), slow(1, "b")]  # two identical statements in one instant
    assert cursor.fresh(first) == first
    assert cursor.since == T0 + timedelta(seconds=1 - LATE_ENTRY_SECONDS)
    # The next read returns the window again, plus a third "b" in the same instant and a newer one.
    again = [*first, slow(1, "b"), slow(2, "c")]
    assert cursor.fresh(again) == [slow(1, "b"), slow(2, "c")]
    assert cursor.fresh(again) == []


def test_an_entry_written_late_with_an_older_time_still_arrives() -> None:
    cursor: LogCursor[SlowQuery] = LogCursor()
    cursor.fresh([slow(10, "short")])
    # A long statement that started before the short one is logged after it, with its older start time.
    assert cursor.fresh([slow(5, "long"), slow(10, "short")]) == [slow(5, "long")]
    assert cursor.fresh([slow(5, "long"), slow(10, "short")]) == []


def test_the_floor_drops_older_entries_and_bounds_since() -> None:
    cursor: LogCursor[SlowQuery] = LogCursor(floor=T0 + timedelta(seconds=5))
    assert cursor.since == T0 + timedelta(seconds=5)
    assert cursor.fresh([slow(4, "old"), slow(6, "new")]) == [slow(6, "new")]
    assert cursor.since == T0 + timedelta(seconds=5)  # not before the floor, whatever the window


def test_entries_without_a_time_are_handed_on_once() -> None:
    cursor: LogCursor[ErrorLogEntry] = LogCursor()
    lines = [ErrorLogEntry(message=f"line {i}") for i in range(3)]
    assert cursor.fresh(lines) == lines
    assert cursor.since is None
    assert cursor.fresh([*lines[1:], ErrorLogEntry(message="line 3")]) == [ErrorLogEntry(message="line 3")]


@pytest.fixture
def stdout(redactor: Redactor) -> Iterator[io.StringIO]:
    """What the publisher writes on the agent's stdout (the engine loggers' handler)."""
    stream = io.StringIO()
    handler = setup_engine_log_output(redactor, stream)
    yield stream
    logging.getLogger(ENGINE_LOGGER).removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_the_publisher_starts_from_now_and_publishes_each_entry_once(
    driver: FakeDriver, redactor: Redactor, stdout: io.StringIO
) -> None:
    redactor.add("the-agents-own-password")
    driver.slow = [slow(0, "history"), slow(0.5, "history too")]
    publisher = EngineLogPublisher(driver, redactor, interval_seconds=10, started=T0 + timedelta(seconds=0.7))
    driver.fail = EngineUnavailable("the engine is starting")
    assert await publisher.publish_once() == 0
    # Logged while the agent could not read yet, after it started: new, though its first read comes later.
    driver.slow.append(slow(1, "CREATE USER 'bob'@'%' IDENTIFIED BY 's3cret-literal'"))
    driver.fail = None
    assert await publisher.publish_once() == 1
    driver.slow.append(slow(2, "SELECT 'the-agents-own-password'"))
    assert await publisher.publish_once() == 1
    assert await publisher.publish_once() == 0  # nothing twice
    text = stdout.getvalue()
    assert "s3cret-literal" not in text and "own-password" not in text and "history" not in text
    published = lines(stdout)
    assert [p["query"] for p in published] == ["CREATE USER 'bob'@'%' IDENTIFIED BY '***'", "SELECT '***'"]
    assert published[0] | {"ts": "-"} == {
        "ts": "-",
        "logger": "kubetrove.engine.slow",
        "engine": "mariadb",
        "time": "2026-12-06T20:00:01+00:00",
        "duration_seconds": 1.5,
        "user": "app",
        "database": None,
        "query": "CREATE USER 'bob'@'%' IDENTIFIED BY '***'",
    }
    # Only the slow log: this engine writes its error log to its own container's log.
    assert {name for name, _ in driver.calls} == {"slow_queries"}


async def test_the_error_log_is_published_where_the_engine_cannot_put_it_in_its_container_log(
    redactor: Redactor, stdout: io.StringIO
) -> None:
    driver = FakeDriver(error_log_in_container_log=False)
    driver.errors = [ErrorLogEntry(message="a line without a time, before the agent started")]
    publisher = EngineLogPublisher(driver, redactor, interval_seconds=10, started=T0)
    assert await publisher.publish_once() == 0  # the first read's lines without a time are the history
    driver.errors.append(ErrorLogEntry(time=T0, level="ERROR", message="ALTER ROLE x PASSWORD 'pw-in-log'"))
    assert await publisher.publish_once() == 1
    (line,) = lines(stdout)
    assert line | {"ts": "-"} == {
        "ts": "-",
        "logger": "kubetrove.engine.error",
        "engine": "mariadb",
        "time": "2026-12-06T20:00:00+00:00",
        "level": "ERROR",
        "message": "ALTER ROLE x PASSWORD '***'",
    }


async def test_refusals_are_one_debug_line_each_and_a_down_engine_is_read_again(
    redactor: Redactor, stdout: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kubetrove.agent")
    driver = FakeDriver(error_log_in_container_log=False)
    publisher = EngineLogPublisher(driver, redactor, interval_seconds=10, started=T0)
    driver.fail = EngineUnavailable("connection refused")
    for _ in range(3):
        assert await publisher.publish_once() == 0
    assert len(caplog.records) == 2  # slow and error: one line each, not one per interval
    driver.fail = None
    await publisher.publish_once()  # readable again (one line each), primed now
    driver.slow.append(slow(1))
    assert await publisher.publish_once() == 1
    caplog.clear()
    driver.fail = Unsupported("PostgreSQL logs slow statements only to its server log")
    for _ in range(3):
        await publisher.publish_once()
    assert len(caplog.records) == 2 and "only to its server log" in caplog.records[0].getMessage()
    driver.calls.clear()
    await publisher.publish_once()
    assert driver.calls == []  # Unsupported never changes: not read again
    conflicted = EngineLogPublisher(FakeDriver(fail=Conflict("log_output=FILE")), redactor, 10)
    await conflicted.publish_once()
    await conflicted.publish_once()
    assert len(conflicted.driver.calls) == 2  # a setting can change back: read every interval


async def test_the_app_runs_the_publisher_while_it_serves(
    driver: FakeDriver, redactor: Redactor, stdout: io.StringIO
) -> None:
    now = datetime.now(UTC)
    driver.slow = [SlowQuery(time=now - timedelta(hours=1), duration_seconds=2, query="history")]
    server = TestServer(make_app(driver, "t0ken-for-tests", redactor=redactor, engine_log_interval=0.01))
    await server.start_server()
    try:
        calls = await _wait_for(lambda: len(driver.calls) >= 2)
        driver.slow.append(
            SlowQuery(time=now + timedelta(seconds=1), duration_seconds=2, query="SELECT 'new'")
        )
        await _wait_for(lambda: "SELECT 'new'" in stdout.getvalue())
    finally:
        await server.close()
    assert calls and [p["query"] for p in lines(stdout)] == ["SELECT 'new'"]
    stopped = len(driver.calls)
    await asyncio.sleep(0.1)  # ten intervals
    assert len(driver.calls) == stopped  # cancelled with the app


async def test_an_app_without_an_interval_publishes_nothing(driver: FakeDriver, redactor: Redactor) -> None:
    server = TestServer(make_app(driver, "t0ken-for-tests", redactor=redactor))
    await server.start_server()
    await asyncio.sleep(0.1)
    await server.close()
    assert driver.calls == []


async def _wait_for(condition: Any, polls: int = 500) -> bool:
    for _ in range(polls):
        if condition():
            return True
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


def test_the_interval_flag_defaults_to_10_and_refuses_a_negative(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    base = ["--engine", "mysql", "--token-file", str(token)]
    assert parse_args(base).engine_log_interval == 10
    assert parse_args([*base, "--engine-log-interval", "0"]).engine_log_interval == 0
    with pytest.raises(SystemExit):
        parse_args([*base, "--engine-log-interval", "-1"])
    assert "--engine-log-interval" in capsys.readouterr().err


async def test_an_unexpected_error_is_one_warning_and_the_publisher_goes_on(
    driver: FakeDriver, redactor: Redactor, stdout: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = EngineLogPublisher(driver, redactor, interval_seconds=10, started=T0)
    await publisher.publish_once()
    driver.fail = KeyError("a column the driver did not expect")
    for _ in range(3):
        assert await publisher.publish_once() == 0
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "KeyError" in warning.getMessage()
    driver.fail = None
    driver.slow.append(slow(1))
    assert await publisher.publish_once() == 1
