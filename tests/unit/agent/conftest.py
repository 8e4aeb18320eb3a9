"""A real aiohttp test server around the agent app with an in-memory driver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from kubetrove.agent.app import make_app
from kubetrove.agent.logs import Redactor
from kubetrove.agent.protocol import TOKEN_HEADER, bearer
from tests.unit.agent.fake_driver import FakeDriver

TOKEN = "unit-test-token-0123456789"
AUTH = {TOKEN_HEADER: bearer(TOKEN)}


@pytest.fixture
def driver() -> FakeDriver:
    return FakeDriver()


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


@pytest.fixture
async def http(driver: FakeDriver, redactor: Redactor) -> AsyncIterator[TestClient[Request, Application]]:
    redactor.add(TOKEN)
    client: TestClient[Request, Application] = TestClient(
        TestServer(make_app(driver, TOKEN, redactor=redactor))
    )
    await client.start_server()
    yield client
    await client.close()
