"""An in-memory EngineDriver for route tests: records every call, and fails on demand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubetrove.agent.engines.base import DriverError, NotFound
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import ErrorLogEntry, Grant, ParametersReply, Role, SlowQuery, Status


@dataclass
class FakeDriver:
    """Databases and users in dicts; ``fail`` makes the next calls raise that error."""

    engine: str = "mariadb"
    databases: set[str] = field(default_factory=set)
    users: dict[str, tuple[str, list[Grant]]] = field(default_factory=dict)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fail: Exception | None = None
    position: str = "0-1-10"
    read_only: bool = False
    slow: list[SlowQuery] = field(default_factory=list)  # oldest first, as the engine logged them
    errors: list[ErrorLogEntry] = field(default_factory=list)
    error_log_in_container_log: bool = True
    # Unreachable on purpose: routes that run engine tools fail when they try to connect.
    config: EngineConfig = field(default_factory=lambda: EngineConfig(host="127.0.0.1", port=1))

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.fail is not None:
            raise self.fail

    def ping(self) -> None:
        self._call("ping")

    def status(self) -> Status:
        self._call("status")
        return Status(
            engine=self.engine,
            version="10.11.0",
            role=Role.PRIMARY,
            read_only=self.read_only,
            healthy=True,
            position=self.position,
            lag_seconds=0.0,
            connections=3,
        )

    def list_databases(self) -> list[str]:
        self._call("list_databases")
        return sorted(self.databases)

    def ensure_database(self, name: str, replication_factor: int) -> bool:
        self._call("ensure_database", name, replication_factor)
        created = name not in self.databases
        self.databases.add(name)
        return created

    def drop_database(self, name: str) -> None:
        self._call("drop_database", name)
        if name not in self.databases:
            raise NotFound(f"database {name!r} does not exist")
        self.databases.remove(name)

    def ensure_user(self, name: str, password: str, grants: list[Grant]) -> bool:
        self._call("ensure_user", name, password, grants)
        created = name not in self.users
        self.users[name] = (password, grants)
        return created

    def drop_user(self, name: str) -> None:
        self._call("drop_user", name)
        if self.users.pop(name, None) is None:
            raise NotFound(f"user {name!r} does not exist")

    def apply_parameters(self, parameters: Mapping[str, str]) -> ParametersReply:
        self._call("apply_parameters", dict(parameters))
        return ParametersReply(applied=sorted(parameters))

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        self._call("set_source", host, port, user, password)

    def stop_replication(self) -> None:
        self._call("stop_replication")

    def promote(self) -> None:
        self._call("promote")

    def fence(self) -> None:
        self._call("fence")
        self.read_only = True

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        self._call("wait_for_position", position, timeout_seconds)
        return position != "unreachable"

    def slow_queries(self, tail: int, since: datetime | None) -> list[SlowQuery]:
        self._call("slow_queries", tail, since)
        return [e for e in self.slow if since is None or e.time >= since][-tail:]

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        self._call("error_log", tail, since)
        return [e for e in self.errors if since is None or e.time is None or e.time >= since][-tail:]


class Boom(DriverError):
    """An engine error with a message that must not reach logs verbatim if it holds a secret."""
