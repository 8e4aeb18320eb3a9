"""GET /v1/logs/slow and /v1/logs/error: bounds, 400s, redaction, 409 and 501, and the client's method."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request

from kubetrove.agent import routes_logs
from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.engines.base import Conflict, EngineUnavailable, Unsupported
from kubetrove.agent.logs import Redactor
from kubetrove.agent.protocol import (
    LOG_TAIL_DEFAULT,
    LOG_TAIL_MAX,
    NDJSON,
    ErrorLogEntry,
    ErrorLogReply,
    Paths,
    SlowLogReply,
    SlowQuery,
)
from tests.unit.agent.conftest import AUTH, TOKEN
from tests.unit.agent.fake_driver import FakeDriver

Client = TestClient[Request, Application]
T0 = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def slow(i: int, query: str = "") -> SlowQuery:
    return SlowQuery(
        time=T0 + timedelta(seconds=i),
        duration_seconds=0.5,
        user="app",
        database="orders",
        query=query or f"SELECT {i} /* q{i} */",
        rows_examined=i,
    )


async def test_slow_log_is_the_newest_tail_oldest_first(http: Client, driver: FakeDriver) -> None:
    driver.slow = [slow(i) for i in range(1500)]
    resp = await http.get(Paths.LOGS_SLOW, headers=AUTH)
    assert resp.status == 200
    reply = SlowLogReply.model_validate_json(await resp.text())
    assert reply.engine == "mariadb"
    assert [e.rows_examined for e in reply.entries] == list(range(1500 - LOG_TAIL_DEFAULT, 1500))
    assert driver.calls[-1] == ("slow_queries", (LOG_TAIL_DEFAULT, None))

    resp = await http.get(Paths.LOGS_SLOW, params={"tail": "1000"}, headers=AUTH)
    assert len(SlowLogReply.model_validate_json(await resp.text()).entries) == LOG_TAIL_MAX


async def test_since_is_passed_as_an_aware_time(http: Client, driver: FakeDriver) -> None:
    driver.slow = [slow(i) for i in range(10)]
    since = "2026-12-06T21:00:07+01:00"  # 20:00:07 UTC
    resp = await http.get(Paths.LOGS_SLOW, params={"tail": "5", "since": since}, headers=AUTH)
    reply = SlowLogReply.model_validate_json(await resp.text())
    assert [e.rows_examined for e in reply.entries] == [7, 8, 9]
    assert driver.calls[-1][1][1] == T0 + timedelta(seconds=7)


@pytest.mark.parametrize(
    "params",
    [
        {"tail": "0"},
        {"tail": "-1"},
        {"tail": str(LOG_TAIL_MAX + 1)},
        {"tail": "ten"},
        {"since": "yesterday"},
        {"since": "2026-12-06T20:00:00"},  # no offset: whose 20:00?
        {"lines": "5"},  # unknown parameters are refused, like unknown body fields
    ],
)
@pytest.mark.parametrize("path", [Paths.LOGS_SLOW, Paths.LOGS_ERROR])
async def test_bad_bounds_are_400_json_and_never_reach_the_driver(
    http: Client, driver: FakeDriver, path: str, params: dict[str, str]
) -> None:
    resp = await http.get(path, params=params, headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["error"] == "bad_request"
    assert driver.calls == []


async def test_the_logs_need_the_token(http: Client, driver: FakeDriver) -> None:
    for path in (Paths.LOGS_SLOW, Paths.LOGS_ERROR):
        assert (await http.get(path)).status == 401
    assert driver.calls == []


async def test_password_literals_and_known_secrets_are_redacted(
    http: Client, driver: FakeDriver, redactor: Redactor
) -> None:
    redactor.add("the-agents-own-password")
    driver.slow = [
        slow(1, "CREATE USER 'bob'@'%' IDENTIFIED BY 's3cret-literal'"),
        slow(2, "CHANGE MASTER TO MASTER_PASSWORD = 'repl-pw'"),
        slow(3, "SELECT 'the-agents-own-password'"),
    ]
    text = await (await http.get(Paths.LOGS_SLOW, headers=AUTH)).text()
    assert "s3cret-literal" not in text and "repl-pw" not in text and "own-password" not in text
    queries = [e.query for e in SlowLogReply.model_validate_json(text).entries]
    assert queries == [
        "CREATE USER 'bob'@'%' IDENTIFIED BY '***'",
        "CHANGE MASTER TO MASTER_PASSWORD = '***'",
        "SELECT '***'",
    ]


async def test_error_log_is_bounded_and_redacted(http: Client, driver: FakeDriver) -> None:
    driver.errors = [ErrorLogEntry(message=f"line {i}") for i in range(5)]
    driver.errors.append(ErrorLogEntry(level="Note", message="ALTER USER x IDENTIFIED BY 'pw-in-log'"))
    resp = await http.get(Paths.LOGS_ERROR, params={"tail": "2"}, headers=AUTH)
    reply = ErrorLogReply.model_validate_json(await resp.text())
    assert [e.message for e in reply.entries] == ["line 4", "ALTER USER x IDENTIFIED BY '***'"]


async def test_log_output_without_table_is_409_with_its_reason(http: Client, driver: FakeDriver) -> None:
    driver.fail = Conflict("mariadb writes its slow log to log_output=FILE, not to mysql.slow_log")
    resp = await http.get(Paths.LOGS_SLOW, headers=AUTH)
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "conflict" and "log_output=FILE" in body["detail"]


@pytest.mark.parametrize("path", [Paths.LOGS_SLOW, Paths.LOGS_ERROR])
async def test_an_engine_the_agent_cannot_read_is_501_with_its_reason(
    http: Client, driver: FakeDriver, path: str
) -> None:
    driver.fail = Unsupported("PostgreSQL logs slow statements only to its server log")
    resp = await http.get(path, headers=AUTH)
    assert resp.status == 501
    assert await resp.json() == {
        "error": "unsupported",
        "detail": "PostgreSQL logs slow statements only to its server log",
    }


async def test_the_client_reads_both_logs_and_raises_the_agents_refusals(
    http: Client, driver: FakeDriver
) -> None:
    driver.slow = [slow(i) for i in range(3)]
    driver.errors = [ErrorLogEntry(time=T0, level="Warning", message="w")]
    async with AgentClient(str(http.make_url("")), TOKEN) as client:
        reply = await client.slow_log(tail=2, since=T0)
        assert [e.rows_examined for e in reply.entries] == [1, 2]
        assert driver.calls[-1] == ("slow_queries", (2, T0))
        assert (await client.error_log()).entries == driver.errors
        with pytest.raises(ValueError, match="tail"):
            await client.slow_log(tail=LOG_TAIL_MAX + 1)  # refused before anything is sent
        driver.fail = Unsupported("no slow log here")
        with pytest.raises(AgentError) as refused:
            await client.slow_log()
    assert refused.value.status == 501 and refused.value.reply.detail == "no slow log here"


@pytest.fixture
def fast_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_logs, "FOLLOW_POLL_SECONDS", 0.01)


async def _line(resp: ClientResponse) -> str:
    return (await asyncio.wait_for(resp.content.readline(), timeout=10)).decode()


@pytest.mark.usefixtures("fast_follow")
async def test_follow_streams_the_tail_then_each_new_entry_once_redacted(
    http: Client, driver: FakeDriver
) -> None:
    driver.slow = [slow(i) for i in range(5)]
    resp = await http.get(Paths.LOGS_SLOW, params={"tail": "2", "follow": "true"}, headers=AUTH)
    assert resp.status == 200 and resp.content_type == NDJSON
    assert [SlowQuery.model_validate_json(await _line(resp)).rows_examined for _ in range(2)] == [3, 4]
    # New entries, one in the same instant as the newest already sent (the boundary), and a password.
    driver.slow += [slow(4, "SELECT 'same instant'"), slow(6, "CREATE USER u IDENTIFIED BY 'pw-12345'")]
    got = [SlowQuery.model_validate_json(await _line(resp)).query for _ in range(2)]
    assert got == ["SELECT 'same instant'", "CREATE USER u IDENTIFIED BY '***'"]
    polls = len(driver.calls)
    await _until(lambda: len(driver.calls) > polls + 3)  # polled again, and nothing new was sent
    driver.slow.append(slow(7, "SELECT 'last'"))
    assert SlowQuery.model_validate_json(await _line(resp)).query == "SELECT 'last'"
    assert all(call == ("slow_queries", (LOG_TAIL_MAX, call[1][1])) for call in driver.calls)
    resp.close()
    # The client went away: the agent stops reading the engine for it.
    await asyncio.sleep(0.2)
    stopped = len(driver.calls)
    await asyncio.sleep(0.2)
    assert len(driver.calls) == stopped


@pytest.mark.usefixtures("fast_follow")
async def test_follow_ends_at_its_bound_and_refuses_in_json_before_the_first_byte(
    http: Client, driver: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_logs, "LOG_FOLLOW_MAX_SECONDS", 0)
    driver.errors = [ErrorLogEntry(time=T0, level="Note", message="started")]
    resp = await http.get(Paths.LOGS_ERROR, params={"follow": "1", "since": T0.isoformat()}, headers=AUTH)
    assert resp.status == 200 and await resp.text() == driver.errors[0].model_dump_json() + "\n"
    driver.fail = Unsupported("the error log goes to stderr")
    resp = await http.get(Paths.LOGS_ERROR, params={"follow": "true"}, headers=AUTH)
    assert resp.status == 501 and (await resp.json())["error"] == "unsupported"
    resp = await http.get(Paths.LOGS_SLOW, params={"follow": "maybe"}, headers=AUTH)
    assert resp.status == 400 and "follow" in (await resp.json())["detail"]


@pytest.mark.usefixtures("fast_follow")
async def test_follow_outlives_an_engine_restart_and_ends_on_another_refusal(
    http: Client, driver: FakeDriver
) -> None:
    driver.slow = [slow(0)]
    resp = await http.get(Paths.LOGS_SLOW, params={"follow": "true"}, headers=AUTH)
    assert SlowQuery.model_validate_json(await _line(resp)).rows_examined == 0
    driver.fail = EngineUnavailable("connection refused")
    polls = len(driver.calls)
    await _until(lambda: len(driver.calls) > polls + 3)
    driver.fail = None
    driver.slow.append(slow(1))
    assert SlowQuery.model_validate_json(await _line(resp)).rows_examined == 1
    driver.fail = Conflict("log_output=FILE")
    assert await asyncio.wait_for(resp.content.read(), timeout=10) == b""  # the stream ended


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


@pytest.mark.usefixtures("fast_follow")
async def test_the_agent_stopping_ends_every_stream(http: Client, driver: FakeDriver) -> None:
    driver.slow = [slow(0)]
    resp = await http.get(Paths.LOGS_SLOW, params={"follow": "true"}, headers=AUTH)
    assert SlowQuery.model_validate_json(await _line(resp)).rows_examined == 0
    await http.server.app.shutdown()  # what aiohttp runs first on SIGTERM, before it waits for requests
    assert await asyncio.wait_for(resp.content.read(), timeout=10) == b""
