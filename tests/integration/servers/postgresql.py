"""Private PostgreSQL 15 servers for tests: a temp datadir owned by ``postgres``, a free loopback port.

PostgreSQL refuses to run as root, so initdb and postgres run as the ``postgres`` user (Popen's
``user=``, so the PID we hold is the postmaster's own and we stop exactly it). The datadir lives in a
``mkdtemp`` directory the ``postgres`` user can reach (pytest's tmp dirs are root-only). The superuser
``kubetrove`` logs in over TCP with SCRAM; the agent uses that account.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from kubetrove.agent.engines.config import EngineConfig
from tests.integration.servers._proc import free_port, stop, tail, wait_for_port

ADMIN = "kubetrove"
BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class PostgreSQLServer:
    """One running postmaster."""

    base: Path
    port: int
    password: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    settings: tuple[str, ...] = ()  # extra ``name=value`` server settings, kept for restart_postgresql

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    def connect(self, user: str = ADMIN, password: str | None = None, dbname: str = "postgres") -> Any:
        """A psycopg connection over TCP (autocommit), as ``user``."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            dbname=dbname,
            autocommit=True,
            connect_timeout=5,
        )

    def query(self, statement: str, args: Any = None, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement as the superuser; return its rows (empty for statements without)."""
        with self.connect(dbname=dbname) as conn:
            cur = conn.execute(statement, args)
            return list(cur.fetchall()) if cur.description else []

    def engine_config(self) -> EngineConfig:
        """How an agent reaches this server."""
        return EngineConfig(host="127.0.0.1", port=self.port, user=ADMIN, password=self.password)

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of the postmaster by PID, SIGKILL if it lingers; delete its files."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)


def _as_postgres(args: list[str]) -> None:
    subprocess.run(args, check=True, capture_output=True, user="postgres", group="postgres", extra_groups=[])


def start_postgresql(settings: tuple[str, ...] = ()) -> PostgreSQLServer:
    """initdb a fresh cluster and start it on a free port; raise if it cannot."""
    if not (BIN / "postgres").exists():
        raise RuntimeError(f"{BIN}/postgres not found: run hack/setup.sh (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="kt-pg-"))
    shutil.chown(base, "postgres", "postgres")
    password = secrets.token_urlsafe(12)
    pwfile = base / "pw"
    pwfile.write_text(password)
    shutil.chown(pwfile, "postgres", "postgres")
    data = base / "data"
    _as_postgres(
        [
            *(str(BIN / "initdb"), "-D", str(data), "-U", ADMIN, f"--pwfile={pwfile}", "--auth-local=trust"),
            *("--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"),
        ]
    )
    pwfile.unlink()
    return _launch(base, password, settings=settings)


def start_standby(primary: PostgreSQLServer, settings: tuple[str, ...] = ()) -> PostgreSQLServer:
    """A streaming standby of ``primary``: pg_basebackup -R (standby.signal, primary_conninfo), started."""
    base = Path(tempfile.mkdtemp(prefix="kt-pg-"))
    shutil.chown(base, "postgres", "postgres")
    subprocess.run(
        [
            *(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", ADMIN),
            *("-D", str(base / "data"), "-R", "-X", "stream", "--no-sync"),
        ],
        check=True,
        capture_output=True,
        user="postgres",
        group="postgres",
        extra_groups=[],
        env={**os.environ, "PGPASSWORD": primary.password},
    )
    return _launch(base, primary.password, settings=settings)


def restart_postgresql(server: PostgreSQLServer) -> None:
    """Start ``server`` again on its datadir and port (after it was stopped or SIGKILLed)."""
    deadline = time.monotonic() + 60
    while True:  # after a SIGKILL the old postmaster's children may hold the shared memory a moment
        try:
            server.proc = _launch(server.base, server.password, server.port, server.settings).proc
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _launch(
    base: Path, password: str, port: int | None = None, settings: tuple[str, ...] = ()
) -> PostgreSQLServer:
    data = base / "data"
    restarting = port is not None
    port = port or free_port()
    log = base / "postgres.log"
    with log.open("ab") as out:  # appended: a restart keeps the earlier log
        shutil.chown(log, "postgres", "postgres")
        proc = subprocess.Popen(
            [
                *(str(BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(base)),
                *(
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "shared_buffers=16MB",
                    "-c",
                    "max_connections=40",
                ),
                *("-c", "wal_level=replica", "-c", "max_wal_senders=5"),
                *(arg for setting in settings for arg in ("-c", setting)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            user="postgres",
            group="postgres",
            extra_groups=[],
        )
    server = PostgreSQLServer(base=base, port=port, password=password, proc=proc, settings=settings)
    try:
        wait_for_port(proc, port, 60, log)
        deadline = time.monotonic() + 60
        while True:  # the port opens before the server accepts logins ("starting up")
            try:
                server.query("SELECT 1")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
    except BaseException:
        logged = tail(log)
        if restarting:  # keep the datadir: the caller retries
            stop(proc)
        else:
            server.stop()
        raise RuntimeError(f"postgres failed to start:\n{logged}") from None
    return server
