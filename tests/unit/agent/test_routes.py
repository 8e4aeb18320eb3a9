"""Routes through a real aiohttp server: auth, error mapping, validation, idempotence, metrics."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient

from kubetrove.agent.app import make_app
from kubetrove.agent.engines.base import (
    BadRequest,
    Conflict,
    DriverError,
    EngineUnavailable,
    NotFound,
    Unsupported,
)
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
        ("POST", Paths.REPLICATION_SOURCE, {"host": "h'; --", "port": 3306, "user": "r", "password": "p"}),
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
