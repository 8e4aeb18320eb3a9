"""Routes through a real aiohttp server: auth, error mapping, validation, idempotence, metrics."""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from kubetrove.agent import volume
from kubetrove.agent.app import make_app
from kubetrove.agent.engines.base import (
    BadRequest,
    Conflict,
    DriverError,
    EngineUnavailable,
    NotFound,
    Unsupported,
)
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import ErrorReply, Paths
from tests.unit.agent.conftest import AUTH
from tests.unit.agent.fake_driver import FakeDriver

Client = TestClient[Any, Any]
HOSTILE = "x'; DROP DATABASE y; --"
USER_BODY = {"password": "pw-Secret-1", "grants": [{"database": "app", "privileges": ["read"]}]}


async def error_of(response: Any, status: int) -> ErrorReply:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return ErrorReply.model_validate_json(await response.text())


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": AUTH["Authorization"].replace("Bearer", "Basic")},
    ],
)
async def test_v1_routes_need_the_token(http: Client, driver: FakeDriver, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", Paths.STATUS),
        ("PUT", "/v1/databases/app"),
        ("POST", Paths.REPLICATION_PROMOTE),
    ]:
        reply = await error_of(await http.request(method, path, headers=headers), 401)
        assert reply.error == "unauthorized"
    assert driver.calls == []


@pytest.mark.parametrize("token", [b"\xff\xfe", b"\xc3\xa9t\xc3\xa9", b"unit-test-token-0123456789\x80"])
async def test_a_non_ascii_authorization_header_is_401_without_a_traceback(
    http: Client, driver: FakeDriver, caplog: pytest.LogCaptureFixture, token: bytes
) -> None:
    """Raw bytes on the socket (aiohttp's client would refuse to send them): before, a non-UTF-8 byte
    made token_matches raise, a 500 and a full traceback per request, for anyone without a token."""
    reader, writer = await asyncio.open_connection(http.server.host, http.server.port)
    writer.write(
        b"GET /v1/status HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer " + token + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401") and ErrorReply.model_validate_json(body).error == "unauthorized"
    assert driver.calls == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_probes_and_metrics_need_no_token(http: Client) -> None:
    for path in (Paths.HEALTHZ, Paths.READYZ):
        response = await http.get(path)
        assert response.status == 200 and (await response.json())["ok"] is True
    metrics = await (await http.get(Paths.METRICS)).text()
    assert 'kubetrove_engine_up{engine="mariadb"} 1.0' in metrics
    assert 'kubetrove_engine_role{engine="mariadb",role="primary"} 1.0' in metrics
    assert "0-1-10" not in metrics  # positions and names stay behind the token


async def test_make_app_refuses_an_empty_token() -> None:
    with pytest.raises(ValueError, match="token"):
        make_app(FakeDriver(), "")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest("b"), 400, "bad_request"),
        (NotFound("n"), 404, "not_found"),
        (Conflict("c"), 409, "conflict"),
        (Unsupported("u"), 501, "unsupported"),
        (EngineUnavailable("e"), 503, "engine_unavailable"),
        (DriverError("d"), 500, "engine_error"),
    ],
)
async def test_driver_errors_map_to_their_status(
    http: Client, driver: FakeDriver, error: DriverError, status: int, code: str
) -> None:
    driver.fail = error
    reply = await error_of(await http.post(Paths.REPLICATION_PROMOTE, headers=AUTH), status)
    assert (reply.error, reply.detail) == (code, str(error))


async def test_unexpected_errors_are_500_without_details(http: Client, driver: FakeDriver) -> None:
    driver.fail = RuntimeError("internal detail that must not leak")
    reply = await error_of(await http.get(Paths.STATUS, headers=AUTH), 500)
    assert reply.error == "internal" and "leak" not in reply.detail


async def test_engine_down_is_503_on_readyz_and_status_and_zero_in_metrics(
    http: Client, driver: FakeDriver
) -> None:
    driver.fail = EngineUnavailable("connection refused")
    await error_of(await http.get(Paths.READYZ), 503)
    await error_of(await http.get(Paths.STATUS, headers=AUTH), 503)
    assert (await http.get(Paths.HEALTHZ)).status == 200  # liveness does not depend on the engine
    metrics = await (await http.get(Paths.METRICS)).text()
    assert 'kubetrove_engine_up{engine="mariadb"} 0.0' in metrics


async def test_readyz_does_not_echo_the_engines_error(
    http: Client, driver: FakeDriver, caplog: pytest.LogCaptureFixture
) -> None:
    driver.fail = EngineUnavailable("connection to db-0.internal:3306 refused for user kubetrove (10.11.6)")
    with caplog.at_level(logging.WARNING, logger="kubetrove.agent"):
        reply = await error_of(await http.get(Paths.READYZ), 503)
    assert reply.error == "engine_unavailable" and reply.detail == "the engine is not ready"
    assert "db-0.internal" in caplog.text  # the agent's own log keeps the cause


async def test_metrics_scrapes_share_one_engine_status(http: Client, driver: FakeDriver) -> None:
    """Unauthenticated: before, each scrape opened an engine connection (a cheap way to exhaust them)."""
    scrapes = await asyncio.gather(*(http.get(Paths.METRICS) for _ in range(20)))
    assert {r.status for r in scrapes} == {200}
    for _ in range(5):
        assert 'kubetrove_engine_up{engine="mariadb"} 1.0' in await (await http.get(Paths.METRICS)).text()
    assert [name for name, _ in driver.calls].count("status") == 1


async def test_unknown_routes_and_methods_are_json(http: Client) -> None:
    assert (await error_of(await http.get("/v1/nothing", headers=AUTH), 404)).error == "not_found"
    assert (await error_of(await http.post(Paths.STATUS, headers=AUTH), 405)).error == "method_not_allowed"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"grants": []}',  # no password
        b'{"password": "p", "grants": [], "superuser": true}',  # unknown field
        b'{"password": "p", "grants": [{"database": "app", "privileges": ["root"]}]}',
        b'{"password": "p", "grants": [{"database": "app", "privileges": []}]}',
        b'{"password": "p\\u0000w", "grants": []}',  # NUL: PostgreSQL refused it with a 500 before
    ],
)
async def test_bad_bodies_are_400(http: Client, driver: FakeDriver, body: bytes) -> None:
    reply = await error_of(await http.put("/v1/users/app", data=body, headers=AUTH), 400)
    assert reply.error == "bad_request"
    assert driver.calls == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", f"/v1/databases/{quote(HOSTILE, safe='')}", None),
        ("DELETE", f"/v1/databases/{quote(HOSTILE, safe='')}", None),
        ("PUT", f"/v1/users/{quote(HOSTILE, safe='')}", USER_BODY),
        ("DELETE", f"/v1/users/{quote('a`b', safe='')}", None),
        (
            "PUT",
            "/v1/users/app",
            {"password": "p", "grants": [{"database": HOSTILE, "privileges": ["read"]}]},
        ),
        ("PUT", "/v1/databases/mysql", None),  # reserved
        ("PUT", f"/v1/databases/{'d' * 65}", None),
        ("PUT", f"/v1/users/{'u' * 81}", USER_BODY),  # MariaDB: 80
        ("PUT", Paths.PARAMETERS, {"parameters": {"x; DROP": "1"}}),
        ("PUT", Paths.PARAMETERS, {"parameters": {"init_connect": "DROP DATABASE app"}}),  # not allowed
        ("PUT", Paths.PARAMETERS, {"parameters": {"max_connections": "9", "archive_command": "sh"}}),
        ("POST", Paths.REPLICATION_SOURCE, {"host": "h'; --", "port": 3306, "user": "r", "password": "p"}),
        ("POST", Paths.REPLICATION_REBUILD, {"host": "h'; --", "port": 3306, "user": "r", "password": "p"}),
    ],
)
async def test_hostile_input_never_reaches_the_driver(
    http: Client, driver: FakeDriver, method: str, path: str, body: Any
) -> None:
    response = await http.request(method, path, json=body, headers=AUTH)
    assert (await error_of(response, 400)).error in {"bad_name", "bad_request"}
    assert driver.calls == []


async def test_put_twice_is_200_both_times_and_delete_missing_is_404(
    http: Client, driver: FakeDriver
) -> None:
    first = await http.put("/v1/databases/app", headers=AUTH)
    second = await http.put("/v1/databases/app", json={"replication_factor": 3}, headers=AUTH)
    assert (first.status, (await first.json())["detail"]) == (200, "created")
    assert (second.status, (await second.json())["detail"]) == (200, "exists")
    assert (await (await http.get(Paths.DATABASES, headers=AUTH)).json()) == {"names": ["app"]}
    assert (await http.delete("/v1/databases/app", headers=AUTH)).status == 200
    assert (await error_of(await http.delete("/v1/databases/app", headers=AUTH), 404)).error == "not_found"

    assert (await (await http.put("/v1/users/app", json=USER_BODY, headers=AUTH)).json())[
        "detail"
    ] == "created"
    assert (await (await http.put("/v1/users/app", json=USER_BODY, headers=AUTH)).json())[
        "detail"
    ] == "updated"
    assert driver.users["app"][0] == "pw-Secret-1"
    assert (await http.delete("/v1/users/app", headers=AUTH)).status == 200
    await error_of(await http.delete("/v1/users/app", headers=AUTH), 404)


async def test_replication_routes_call_the_driver(http: Client, driver: FakeDriver) -> None:
    source = {"host": "db-0.db.ns.svc", "port": 3306, "user": "repl", "password": "r-pass"}
    assert (await http.post(Paths.REPLICATION_SOURCE, json=source, headers=AUTH)).status == 200
    for path in (Paths.REPLICATION_STOP, Paths.REPLICATION_FENCE, Paths.REPLICATION_PROMOTE):
        assert (await http.post(path, headers=AUTH)).status == 200
    assert [name for name, _ in driver.calls] == ["set_source", "stop_replication", "fence", "promote"]
    assert driver.calls[0][1] == ("db-0.db.ns.svc", 3306, "repl", "r-pass")


async def test_rebuild_is_501_for_an_engine_that_cannot(http: Client, driver: FakeDriver) -> None:
    """The fake serves MariaDB, which has no clone: its errant members are rebuilt by hand (I7)."""
    source = {"host": "db-0.db.ns.svc", "port": 3306, "user": "repl", "password": "r-pass"}
    reply = await error_of(await http.post(Paths.REPLICATION_REBUILD, json=source, headers=AUTH), 501)
    assert reply.error == "unsupported" and "cannot rebuild" in reply.detail
    assert driver.calls == []


async def test_wait_is_200_when_reached_and_408_on_timeout(http: Client) -> None:
    reached = await http.post(Paths.REPLICATION_WAIT, json={"position": "0-1-5"}, headers=AUTH)
    assert reached.status == 200 and (await reached.json())["reached"] is True
    late = await http.post(
        Paths.REPLICATION_WAIT, json={"position": "unreachable", "timeout_seconds": 1}, headers=AUTH
    )
    assert (await error_of(late, 408)).error == "timeout"
    bad = await http.post(
        Paths.REPLICATION_WAIT, json={"position": "0-1-5", "timeout_seconds": 0}, headers=AUTH
    )
    await error_of(bad, 400)


async def test_parameters_and_status(http: Client, driver: FakeDriver) -> None:
    reply = await http.put(Paths.PARAMETERS, json={"parameters": {"max_connections": "500"}}, headers=AUTH)
    assert (await reply.json()) == {"applied": ["max_connections"], "needs_restart": []}
    status = await (await http.get(Paths.STATUS, headers=AUTH)).json()
    assert status["role"] == "primary" and status["position"] == "0-1-10"


async def test_body_too_large_is_413(http: Client) -> None:
    reply = await http.put("/v1/users/app", data=b"x" * (2 * 1024 * 1024), headers=AUTH)
    assert (await error_of(reply, 413)).error == "request_entity_too_large"


async def test_status_and_metrics_report_the_data_volume_also_while_the_engine_is_down(
    http: Client, driver: FakeDriver, tmp_path: Path
) -> None:
    """statvfs of --data-dir: the numbers df prints for that filesystem, engine up or not."""
    driver.config = EngineConfig(host="127.0.0.1", port=1, options={"data_dir": str(tmp_path)})
    status = await (await http.get(Paths.STATUS, headers=AUTH)).json()
    usage = shutil.disk_usage(tmp_path)
    volume = status["volume"]
    assert volume["capacity_bytes"] == usage.total
    assert 0 < volume["used_bytes"] <= volume["capacity_bytes"]
    assert abs(volume["available_bytes"] - usage.free) < 64 * 1024 * 1024  # others write meanwhile
    driver.fail = EngineUnavailable("disk full")
    await error_of(await http.get(Paths.STATUS, headers=AUTH), 503)
    metrics = await (await http.get(Paths.METRICS)).text()
    samples = {s.name: s.value for f in text_string_to_metric_families(metrics) for s in f.samples}
    assert samples["kubetrove_volume_capacity_bytes"] == usage.total
    assert samples["kubetrove_engine_up"] == 0 and samples["kubetrove_volume_used_bytes"] > 0


async def test_without_a_data_directory_no_volume_is_reported(http: Client, driver: FakeDriver) -> None:
    status = await (await http.get(Paths.STATUS, headers=AUTH)).json()
    assert status.get("volume") is None
    assert "kubetrove_volume_used_bytes{" not in await (await http.get(Paths.METRICS)).text()
    assert volume.measure("/nonexistent/kubetrove-data") is None


async def test_volume_answers_while_the_engine_is_down(
    http: Client, driver: FakeDriver, tmp_path: Path
) -> None:
    """GET /v1/volume never calls the engine: an engine stopped on a full disk still has its figures."""
    driver.config = EngineConfig(host="127.0.0.1", port=1, options={"data_dir": str(tmp_path)})
    driver.fail = EngineUnavailable("No space left on device")
    await error_of(await http.get(Paths.STATUS, headers=AUTH), 503)
    reply = await http.get(Paths.VOLUME, headers=AUTH)
    assert reply.status == 200
    volume = (await reply.json())["volume"]
    assert volume["capacity_bytes"] > 0 and volume["used_bytes"] + volume["available_bytes"] > 0
    await error_of(await http.get(Paths.VOLUME), 401)
