"""The agent's HTTP kit and app factory: error codes on the wire, route groups handed to the factory."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetrove.agent import routes_restore
from kubetrove.agent.app import ROUTE_GROUPS, make_app
from kubetrove.agent.engines import base
from kubetrove.agent.http import CONTEXT
from kubetrove.agent.protocol import ErrorCode, Paths, RestoreState
from kubetrove.agent.server import build_app
from tests.unit.agent.conftest import AUTH, TOKEN
from tests.unit.agent.fake_driver import FakeDriver

# The wire strings as they were before the enum: renaming one breaks every operator that matches on it.
WIRE_CODES = {
    "bad_request", "bad_name", "unsupported_method", "unauthorized", "not_found", "method_not_allowed",
    "timeout", "conflict", "backup_running", "request_entity_too_large", "http_error", "engine_error",
    "internal", "unsupported", "storage_error", "engine_unavailable", "restore_pending",
    "restore_restoring", "restore_refused", "restore_failed",
}  # fmt: skip


def test_error_codes_are_the_wire_strings() -> None:
    assert {code.value for code in ErrorCode} == WIRE_CODES


def test_every_driver_error_and_unfinished_restore_state_has_a_code() -> None:
    errors = (base.BadRequest, base.NotFound, base.Conflict, base.EngineUnavailable, base.Unsupported)
    for error in (base.DriverError, *errors):
        assert isinstance(error.code, ErrorCode)
    for state in RestoreState:
        if state is not RestoreState.DONE:
            assert ErrorCode(f"restore_{state.value}")


async def test_the_factory_serves_only_the_route_groups_it_is_handed() -> None:
    context = make_app(FakeDriver(), TOKEN)[CONTEXT]
    client = TestClient(TestServer(build_app(context, [routes_restore.add_routes])))
    await client.start_server()
    try:
        assert (await client.get(Paths.STATUS, headers=AUTH)).status == 404
        reply = await client.get(Paths.RESTORE, headers=AUTH)
        assert reply.status == 404 and (await reply.json())["error"] == "not_found"
        wrong = await client.post(Paths.RESTORE, headers=AUTH)
        assert wrong.status == 405 and (await wrong.json())["error"] == "method_not_allowed"
    finally:
        await client.close()


@pytest.mark.parametrize("group", ROUTE_GROUPS)
def test_every_route_group_registers_routes(group: object) -> None:
    app = build_app(make_app(FakeDriver(), TOKEN)[CONTEXT], [group])  # type: ignore[list-item]
    assert len(app.router.routes()) > 0
