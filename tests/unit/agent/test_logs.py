"""Logs are JSON lines and never contain the token or a password, even when an error message does."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kubetrove.agent.logs import Redactor, setup_logging
from kubetrove.agent.protocol import Paths
from tests.unit.agent.conftest import AUTH, TOKEN
from tests.unit.agent.fake_driver import Boom, FakeDriver

PASSWORD = "Hunter2-very-secret"


@pytest.fixture
def log_stream(redactor: Redactor) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    setup_logging(redactor, "DEBUG", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


async def test_no_secret_reaches_the_log_or_the_error_detail(
    http: TestClient[Any, Any], driver: FakeDriver, log_stream: io.StringIO
) -> None:
    body = {"password": PASSWORD, "grants": []}
    assert (await http.put("/v1/users/app", json=body, headers=AUTH)).status == 200
    # A driver error and an unexpected crash whose messages quote the password.
    driver.fail = Boom(f"engine said: bad password {PASSWORD}")
    failed = await http.put("/v1/users/app", json=body, headers=AUTH)
    assert failed.status == 500 and PASSWORD not in await failed.text()
    driver.fail = RuntimeError(f"crash while handling {PASSWORD}")
    assert (await http.put("/v1/users/app", json=body, headers=AUTH)).status == 500
    # A refused body that contains the password.
    refused = await http.put("/v1/users/app", json={"password": PASSWORD, "extra": 1}, headers=AUTH)
    assert refused.status == 400 and PASSWORD not in await refused.text()
    driver.fail = None
    source = {"host": "db-0", "port": 3306, "user": "repl", "password": PASSWORD}
    assert (await http.post(Paths.REPLICATION_SOURCE, json=source, headers=AUTH)).status == 200
    logging.getLogger("kubetrove.test").info("token is %s", TOKEN)

    text = log_stream.getvalue()
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["status"] for r in records if r.get("msg") == "request"] == [200, 500, 500, 400, 200]
    assert any("crash while handling ***" in r.get("exc", "") for r in records)
    assert PASSWORD not in text and TOKEN not in text


def test_redactor_ignores_tiny_strings_and_forgets() -> None:
    redactor = Redactor()
    redactor.add("ab")
    redactor.add("secret-1")
    assert redactor.scrub("ab secret-1") == "ab ***"
    redactor.discard("secret-1")
    assert redactor.scrub("secret-1") == "secret-1"


@pytest.mark.parametrize(
    "secret", ['quo"ted-pass', "b\\ack\\slash", "pässwörd-ü", "tab\there", "ключ-пароль"]
)
def test_secrets_that_json_escapes_are_still_redacted(
    redactor: Redactor, log_stream: io.StringIO, secret: str
) -> None:
    """Before, the line was scrubbed after json.dumps: '"' became '\\"' and 'ä' '\\u00e4', so they leaked."""
    redactor.add(secret)
    log = logging.getLogger("kubetrove.agent.test")
    log.warning("connect failed for %s", secret, extra={"detail": {"conninfo": f"password={secret}"}})
    try:
        raise RuntimeError(f"engine said: {secret}")
    except RuntimeError:
        log.exception("boom")
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        decoded = json.dumps(json.loads(line), ensure_ascii=False)
        assert secret not in decoded and json.dumps(secret)[1:-1] not in line
    assert (
        "***" in json.loads(lines[0])["msg"] and json.loads(lines[0])["detail"]["conninfo"] == "password=***"
    )
