"""The MySQL rebuild's state machine (``agent/engines/mysql/clone.py``, ``Rebuild``) on a scripted server:
its refusals, what it names as discarded, one at a time, and the back-off after a failure. The real
statements run against real 9.7.4 and 8.0.31 servers in tests/integration/test_failover_mysql*.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from kubetrove.agent.engines.base import Conflict, EngineUnavailable
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mysql import clone

MINE, DONOR = "aaaa:1-7", "bbbb:1-9,aaaa:1-5"


@dataclass
class Server:
    """What the member's server answers."""

    read_only: int = 1
    plugin: str | None = "ACTIVE"
    uuid: str = "aaaa"
    com_clone: int = 0
    statements: list[str] = field(default_factory=list)


class Cursor:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.row: dict[str, Any] | None = None

    def execute(self, sql: str, args: Any = None) -> None:
        self.server.statements.append(sql)
        s = self.server
        if "server_uuid" in sql:
            self.row = {"mine": MINE, "uuid": s.uuid, "ro": s.read_only, "plugin": s.plugin}
        elif "GTID_SUBTRACT" in sql:
            assert args == (MINE, DONOR)
            self.row = {"d": "aaaa:6-7"}
        elif "Com_clone" in sql:
            self.row = {"Variable_name": "Com_clone", "Value": str(s.com_clone)}

    def fetchone(self) -> dict[str, Any] | None:
        return self.row


class Driver:
    def __init__(self, server: Server) -> None:
        self.server, self.config = server, EngineConfig()
        self.replicated: list[tuple[str, int, str, str]] = []
        self.replicated_event = threading.Event()

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        yield Cursor(self.server)

    def replicate(self, host: str, port: int, user: str, password: str) -> None:
        self.replicated.append((host, port, user, password))
        self.replicated_event.set()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def donor(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    state = {"uuid": "bbbb"}
    monkeypatch.setattr(clone, "donor_state", lambda *a: (DONOR, state["uuid"]))
    return state


def ended(job: clone.Rebuild) -> None:
    deadline = time.monotonic() + 5
    while job.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not job.running


def rebuild(server: Server, clock: Clock | None = None) -> tuple[clone.Rebuild, Driver]:
    driver = Driver(server)
    return clone.Rebuild(driver, driver.replicate, restart_timeout=5, clock=clock or Clock()), driver


def test_a_rebuild_names_what_it_discards_clones_then_replicates(
    donor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    cloned: list[tuple[str, int]] = []

    def fake_clone(cur: Any, host: str, port: int, user: str, password: str) -> None:
        cloned.append((host, port))
        release.wait(5)  # the clone runs until the test lets it end

    monkeypatch.setattr(clone, "clone_from", fake_clone)
    job, driver = rebuild(Server())
    reply = job.start("10.0.0.1", 3306, "repl", "pw")
    assert (reply.discarded, reply.donor_position) == ("aaaa:6-7", DONOR)
    assert job.running
    with pytest.raises(Conflict, match="already running"):
        job.start("10.0.0.1", 3306, "repl", "pw")
    release.set()
    assert driver.replicated_event.wait(5)
    assert cloned == [("10.0.0.1", 3306)] and driver.replicated == [("10.0.0.1", 3306, "repl", "pw")]
    ended(job)
    assert job.error is None
    assert "STOP REPLICA" in driver.server.statements


@pytest.mark.parametrize(
    ("server", "why"),
    [
        (Server(read_only=0), "writable member"),
        (Server(uuid="bbbb"), "its own donor"),
    ],
)
def test_refusals_touch_nothing(donor: dict[str, str], server: Server, why: str) -> None:
    job, _ = rebuild(server)
    with pytest.raises(Conflict, match=why):
        job.start("10.0.0.1", 3306, "repl", "pw")
    assert not job.running and not any("CLONE" in s for s in server.statements)


def test_a_clone_less_member_refuses_and_backs_off(donor: dict[str, str]) -> None:
    clock = Clock()
    job, _ = rebuild(Server(plugin=None), clock)  # 8.0.31's generic build: no clone plugin
    with pytest.raises(Conflict, match="clone plugin is not active"):
        job.start("10.0.0.1", 3306, "repl", "pw")
    assert job.error is not None and "clone plugin" in job.error  # reported: the loop does not ask
    clock.now += clone.RETRY_AFTER
    assert job.error is None  # the back-off is over: the loop may ask again


def test_a_failed_clone_is_reported_then_cleared(
    donor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any) -> None:
        raise Conflict("mysql could not clone from 10.0.0.1:3306: Too many concurrent clone operations")

    monkeypatch.setattr(clone, "clone_from", refused)
    clock = Clock()
    job, driver = rebuild(Server(), clock)
    job.start("10.0.0.1", 3306, "repl", "pw")
    ended(job)
    assert job.error is not None and "concurrent clone" in job.error
    assert driver.replicated == []
    clock.now += clone.RETRY_AFTER
    assert job.error is None


def test_the_restart_is_recognised_by_com_clone() -> None:
    server = Server(com_clone=1)  # the old process, which counted the CLONE statement
    driver = Driver(server)
    job = clone.Rebuild(driver, driver.replicate, restart_timeout=0.6, clock=time.monotonic)
    with pytest.raises(EngineUnavailable, match="did not come back"):
        job._wait_for_restart()
    server.com_clone = 0  # a new process
    job._wait_for_restart()
