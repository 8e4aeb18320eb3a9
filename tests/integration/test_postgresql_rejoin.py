"""The PostgreSQL pod start script and the agent's rejoin path on real PostgreSQL 15 servers.

Each "member" is the engine container's real start script (``datastores/postgresql/start.py``) run as
the ``postgres`` user on the host, with the cluster's rendered postgresql.conf (loopback port and
scratch paths appended); the agent side is the real ``PostgreSQLDriver`` with its rejoin file. What a
pod does and the test checks: an empty member clones itself and streams; a standby follows a new
primary after ``set_source`` (reload, no restart); a demoted ex-primary that wrote past the fork point
is rewound and restarted as a standby by its own script; a rewind that cannot work keeps the data and
is reported.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from kubetrove.agent.engines.base import Conflict, DriverError
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.postgresql.driver import PostgreSQLDriver
from kubetrove.agent.protocol import Role
from kubetrove.api.common import Engine
from kubetrove.datastores.postgresql import start
from kubetrove.datastores.registry import REGISTRY
from tests.integration.servers import postgresql as pg
from tests.integration.servers._proc import free_port, stop, tail

PASSWORD = secrets.token_urlsafe(12)


def _as_postgres(**kw: Any) -> dict[str, Any]:
    return {"user": "postgres", "group": "postgres", "extra_groups": [], **kw}


@contextmanager
def agent_uid() -> Iterator[None]:
    """Run as ``postgres``, as the agent does in a pod (same uid as the engine): the rejoin file is 0600."""
    entry = pwd.getpwnam("postgres")
    os.setegid(entry.pw_gid)
    os.seteuid(entry.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


class Member:
    """One pod's engine container on the host: its start script supervising postgres."""

    def __init__(self, ordinal: int, source_port: int | None) -> None:
        self.ordinal, self.port = ordinal, free_port()
        self.base = Path(tempfile.mkdtemp(prefix="kt-pgm-"))
        shutil.chown(self.base, "postgres", "postgres")
        self.pgdata, self.state, self.log = (
            self.base / "15" / "docker",
            self.base / "kubetrove",
            self.base / "log",
        )
        self.server_logs = self.base / "pglog"  # the logging collector's CSV files (LOG_SETTINGS)
        conf = self.base / "postgresql.conf"
        overrides = (
            f"port = {self.port}", "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.base}'",
            f"hba_file = '{self.base}/pg_hba.conf'", "shared_buffers = '16MB'", "max_connections = 30",
            f"log_directory = '{self.server_logs}'",  # the pod's is on its volume, outside PGDATA
        )  # fmt: skip
        conf.write_text(REGISTRY[Engine.POSTGRESQL].render_config({}) + "\n".join(overrides) + "\n")
        sources = () if source_port is None else ("127.0.0.1",)
        self.script = start.script(
            str(conf), source_port or self.port, pg.ADMIN, state_dir=str(self.state),
            hba_file=str(self.base / "pg_hba.conf"), clone_sources=sources,
        )  # fmt: skip
        self.args = (str(pg.BIN / "postgres"), "-D", str(self.pgdata), "-c", f"config_file={conf}")
        self.proc: subprocess.Popen[bytes] | None = None

    def initdb(self) -> None:
        """What the image entrypoint does for ordinal 0 of a new cluster."""
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD)
        shutil.chown(pwfile, "postgres", "postgres")
        self.pgdata.parent.mkdir()
        shutil.chown(self.pgdata.parent, "postgres", "postgres")
        subprocess.run([str(pg.BIN / "initdb"), "-D", str(self.pgdata), "-U", pg.ADMIN, f"--pwfile={pwfile}",
                        "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True,
                       **_as_postgres())  # fmt: skip

    def start(self) -> None:
        env = {"PATH": f"{pg.BIN}:{os.environ['PATH']}", "HOSTNAME": f"pg-{self.ordinal}",
               "PGDATA": str(self.pgdata), "POSTGRES_PASSWORD": PASSWORD}  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(["sh", "-c", self.script, "kubetrove-postgres", *self.args], env=env,
                                         stdout=out, stderr=subprocess.STDOUT, **_as_postgres())  # fmt: skip

    def config(self) -> EngineConfig:
        """How this member's agent reaches it, with the pod's rejoin file."""
        options = {"demoted_marker": str(self.state / "rejoin")}
        return EngineConfig(
            host="127.0.0.1", port=self.port, user=pg.ADMIN, password=PASSWORD, options=options
        )

    def query(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=pg.ADMIN, password=PASSWORD,
                             dbname="postgres", autocommit=True, connect_timeout=3) as conn:  # fmt: skip
            cur = conn.execute(statement, args or None)
            return list(cur.fetchall()) if cur.description else []

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc, grace=60)  # SIGTERM: the script's trap makes it a fast shutdown of postgres
        shutil.rmtree(self.base, ignore_errors=True)


def eventually(check: Callable[[], bool], what: str, member: Member, tries: int = 600) -> None:
    """Poll ``check`` (errors count as "not yet"); fail with the member's log."""
    for _ in range(tries):
        try:
            if check():
                return
        except (psycopg.Error, OSError, DriverError):
            pass
        time.sleep(0.2)
    server_log = max(member.server_logs.glob("*.csv"), default=member.server_logs, key=lambda f: f.name)
    raise AssertionError(f"never happened: {what}\n{tail(member.log)}\n{tail(server_log)}")


@pytest.fixture
def members() -> Iterator[Callable[[int, int | None], Member]]:
    started: list[Member] = []

    def make(ordinal: int, source_port: int | None) -> Member:
        member = Member(ordinal, source_port)
        started.append(member)
        return member

    yield make
    for member in reversed(started):
        member.stop()


def rows(member: Member) -> set[str]:
    return {r[0] for r in member.query("SELECT v FROM t")}


def test_clone_repoint_and_rewind_of_an_ex_primary(members: Callable[[int, int | None], Member]) -> None:
    a = members(0, None)
    a.initdb()
    a.start()
    eventually(lambda: a.query("SELECT 1") == [(1,)], "pg-0 up", a)
    a.query("CREATE TABLE t (v text PRIMARY KEY)")
    a.query("INSERT INTO t VALUES ('before')")

    # 1. Empty members clone themselves from the primary before postgres starts, and stream.
    b, c = members(1, a.port), members(2, a.port)
    for m in (b, c):
        m.start()
        eventually(lambda m=m: rows(m) == {"before"}, f"{m.pgdata} cloned", m)  # type: ignore[misc]
    eventually(lambda: len(a.query("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'")) == 2,
               "two streaming standbys", a)  # fmt: skip
    da, db, dc = (PostgreSQLDriver(m.config()) for m in (a, b, c))
    assert da.status().role is Role.PRIMARY
    assert db.status().role is Role.REPLICA and db.status().replication_running

    # 2. Failover: the standbys stop receiving; the old primary still commits one write (never
    # acknowledged by a standby: it is past the fork point); pg-1 is promoted without a restart.
    db.stop_replication()
    dc.stop_replication()
    a.query("INSERT INTO t VALUES ('diverged')")
    da.fence()
    db.promote()
    b.query("INSERT INTO t VALUES ('after')")
    assert db.status().role is not Role.REPLICA and not db.status().read_only

    # 3. A standby follows the new primary after a reload (its script never restarted it).
    dc.set_source("127.0.0.1", b.port, pg.ADMIN, PASSWORD)
    eventually(lambda: rows(c) == {"before", "after"}, "pg-2 streams from pg-1", c)
    assert dc.status().source_host == f"127.0.0.1:{b.port}"

    # 4. The ex-primary is asked to follow too: its own script stops it, rewinds it (the diverged
    # write disappears) and starts it as a standby of pg-1; the script itself never exits.
    with agent_uid():
        da.set_source("127.0.0.1", b.port, pg.ADMIN, PASSWORD)
    eventually(lambda: da.status().role is Role.REPLICA and da.status().replication_running,
               "pg-0 rejoined as a standby", a)  # fmt: skip
    assert rows(a) == {"before", "after"}
    assert a.proc is not None and a.proc.poll() is None
    assert not (a.state / "rejoin").exists() and "rewound as a standby" in a.log.read_text()
    streaming = b.query("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    assert streaming == [(2,)]
    b.query("INSERT INTO t VALUES ('later')")
    eventually(lambda: "later" in rows(a), "pg-0 replays the new primary's writes", a)


def test_a_rewind_that_cannot_work_keeps_the_data_and_is_reported(
    members: Callable[[int, int | None], Member],
) -> None:
    a, stranger = members(0, None), members(0, None)  # two unrelated clusters: pg_rewind must refuse
    for m in (a, stranger):
        m.initdb()
        m.start()
        eventually(lambda m=m: m.query("SELECT 1") == [(1,)], "up", m)  # type: ignore[misc]
    a.query("CREATE TABLE t (v text PRIMARY KEY)")
    a.query("INSERT INTO t VALUES ('mine')")
    da = PostgreSQLDriver(a.config())
    with agent_uid():
        da.set_source("127.0.0.1", stranger.port, pg.ADMIN, PASSWORD)
    eventually(lambda: (a.state / "rewind-failed").exists() and a.query("SELECT 1") == [(1,)],
               "pg-0 back after the failed rewind", a)  # fmt: skip
    status = da.status()
    assert status.role is not Role.REPLICA and status.read_only and not status.healthy
    assert status.replication_error and "different systems" in status.replication_error
    assert status.diverged  # decide quarantines it as errant (I5) instead of repointing it every cycle
    assert rows(a) == {"mine"}
    with pytest.raises(Conflict, match="rebuild this member"):
        da.set_source("127.0.0.1", stranger.port, pg.ADMIN, PASSWORD)
    with agent_uid():
        da.promote()  # a deliberate promotion (or a rebuild) clears the record
    assert da.status().healthy and not da.status().read_only and not da.status().diverged
