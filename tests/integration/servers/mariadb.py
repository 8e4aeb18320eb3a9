"""Private MariaDB servers for tests: a temp datadir, a free loopback port, stopped by PID.

Each instance has binary logging and GTIDs on (replication tests make one a replica of another) and an
admin account ``kubetrove@%`` with every privilege, the account the agent uses. ``--skip-name-resolve``
matters: without it a TCP login from 127.0.0.1 as ``'user'@'%'`` matches the anonymous ``''@'localhost'``
account and is refused (../shared/notes/local-cluster.md, section 11).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.datastores._mysql_common.strategy import DEMOTED_MARKER
from kubetrove.datastores.mariadb.strategy import FLAVOR
from tests.integration.servers._proc import NO_NATIVE_AIO, free_port, stop, tail, wait_for_port

ADMIN = "kubetrove"


@dataclass
class MariaDBServer:
    """One running mariadbd."""

    base: Path
    port: int
    server_id: int
    password: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    extra: tuple[str, ...] = ()  # options beyond the defaults (semi-sync), kept for restart_mariadb

    @property
    def log(self) -> Path:
        return self.base / "error.log"

    def connect(self, user: str = ADMIN, password: str | None = None, database: str | None = None) -> Any:
        """A pymysql connection over TCP (autocommit), as ``user``."""
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=user,
            password=self.password if password is None else password,
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def query(self, statement: str, args: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement as the admin account; return its rows."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    @property
    def demoted_marker(self) -> Path:
        """The product's marker file (DEMOTED_MARKER), in this server's datadir as in a pod's."""
        return self.base / "data" / Path(DEMOTED_MARKER).name

    def engine_config(self) -> EngineConfig:
        """How an agent reaches this server (it keeps the demoted marker, as the pod's agent does)."""
        return EngineConfig(
            host="127.0.0.1",
            port=self.port,
            user=ADMIN,
            password=self.password,
            options={"demoted_marker": str(self.demoted_marker)},
        )

    def stop(self) -> None:
        """Stop mariadbd by its PID and delete its files."""
        stop(self.proc)
        shutil.rmtree(self.base, ignore_errors=True)


# Lossless semi-sync (docs/clustering.md): a commit returns only after a replica received it (AFTER_SYNC),
# and the wait never times out into asynchronous replication (1 day). The primary's half is switched
# on by the clustering loop when it promotes (AgentOps ``on_promote``): a server starting with it on and
# no replica yet blocks every commit, its own set-up included.
SEMI_SYNC = (
    "--read-only=ON",  # cluster members start fenced, as the product renders them (render_config clustered)
    "--rpl-semi-sync-slave-enabled=ON",
    "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
    "--rpl-semi-sync-master-timeout=86400000",
)


def start_mariadb(
    base: Path, server_id: int = 1, *, semi_sync: bool = False, options: tuple[str, ...] = ()
) -> MariaDBServer:
    """Initialize a datadir under ``base`` and start mariadbd on a free port; raise if it cannot.
    ``options``: more server options (e.g. the product's TLS settings, ``tls.py``)."""
    for binary in ("mariadb-install-db", "mariadbd"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            raise RuntimeError(f"{binary} not found: run hack/setup.sh (apt-get install mariadb-server)")
    base.mkdir(parents=True, exist_ok=True)
    data = base / "data"
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--user=root",
            "--skip-test-db",
            NO_NATIVE_AIO,  # passed on to the bootstrap mariadbd
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    socket = base / "s.sock"
    log = base / "error.log"
    extra = (*(SEMI_SYNC if semi_sync else ()), *options)
    proc = _launch(base, port, server_id, extra)
    try:
        wait_for_port(proc, port, 60, log)
        password = secrets.token_urlsafe(12)
        root = pymysql.connect(unix_socket=str(socket), user="root", password="", autocommit=True)
        try:
            with root.cursor() as cur:
                # sql_log_bin = 0: the admin account is local set-up, not a transaction replicas should see.
                cur.execute("SET SESSION sql_log_bin = 0")
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (ADMIN, password))
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO `{ADMIN}`@'%' WITH GRANT OPTION")
        finally:
            root.close()
    except BaseException:
        stop(proc)
        raise RuntimeError(f"mariadbd failed to start:\n{tail(log)}") from None
    return MariaDBServer(base=base, port=port, server_id=server_id, password=password, proc=proc, extra=extra)


def restart_mariadb(server: MariaDBServer) -> None:
    """Start ``server`` again on its datadir and port (after it was stopped or SIGKILLed).

    As the pod's start command does (``server_id_command``): with the product's demoted start flags while
    the agent's demoted marker exists.
    """
    demoted = FLAVOR.demoted_start_flags if server.demoted_marker.exists() else ()
    server.proc = _launch(server.base, server.port, server.server_id, (*server.extra, *demoted))
    try:
        wait_for_port(server.proc, server.port, 120, server.log)
    except BaseException:
        stop(server.proc)
        raise


def _launch(base: Path, port: int, server_id: int, extra: tuple[str, ...]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={base / 'data'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={base / 's.sock'}",
            "--user=root",
            f"--pid-file={base / 'mariadbd.pid'}",
            f"--log-error={base / 'error.log'}",
            "--skip-name-resolve",
            f"--server-id={server_id}",
            f"--log-bin={base / 'binlog'}",
            "--log-slave-updates",
            "--gtid-strict-mode=1",
            "--innodb-buffer-pool-size=32M",
            "--performance-schema=OFF",
            NO_NATIVE_AIO,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
