"""Fixtures for real MySQL servers: 9.7 LTS (Debian sid, chrooted) and 8.0.31 (Oracle's generic build).

Imported by tests/integration/conftest.py. Servers are session-scoped, each with a unique server_id,
and stopped by PID at the end of the session. A server that cannot start raises: its tests ERROR, the
tier fails (never skips).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.servers.mysql import MySQLServer, sid_tools, start_mysql

__all__ = ["mysql", "mysql80", "mysql_factory", "mysql_tools"]

MySQLFactory = Callable[..., MySQLServer]


@pytest.fixture(scope="session")
def mysql_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLFactory]:
    """``make(version="9.7", extra=(), **start_mysql_options)``: a fresh MySQL server per call; all are
    stopped at the end."""
    server_ids = itertools.count(1)
    started: list[MySQLServer] = []

    def make(version: str = "9.7", extra: tuple[str, ...] = (), **options: Any) -> MySQLServer:
        begin = time.monotonic()
        base = tmp_path_factory.mktemp(f"mysql{version.replace('.', '')}-")
        server_id = options.pop("server_id", None) or next(server_ids)
        server = start_mysql(base, server_id, version=version, extra=extra, **options)
        started.append(server)
        seconds = time.monotonic() - begin
        print(f"\nmysql {version} up in {seconds:.1f} s (port {server.port})", file=sys.stderr)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def mysql(mysql_factory: MySQLFactory) -> MySQLServer:
    """One MySQL 9.7 shared by the tests that do not need a server of their own."""
    return mysql_factory("9.7")


@pytest.fixture(scope="session")
def mysql80(mysql_factory: MySQLFactory) -> MySQLServer:
    """One MySQL 8.0.31 shared by the tests that do not need a server of their own."""
    return mysql_factory("8.0")


@pytest.fixture(scope="session")
def mysql_tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MySQL 9.7's mysqldump and mysql first on PATH for the session (the host's are MariaDB's)."""
    tools = sid_tools(tmp_path_factory.mktemp("mysql-tools"))
    before = os.environ["PATH"]
    os.environ["PATH"] = f"{tools}{os.pathsep}{before}"
    yield tools
    os.environ["PATH"] = before
