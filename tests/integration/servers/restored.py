"""Start an engine on a data dir a restore produced (the accounts and passwords are the source's)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.servers._proc import NO_NATIVE_AIO, free_port, stop, tail, wait_for_port
from tests.integration.servers.mariadb import MariaDBServer
from tests.integration.servers.postgresql import PostgreSQLServer, _launch


def start_mariadb_on(base: Path, password: str, server_id: int = 99) -> MariaDBServer:
    """mariadbd on ``base/data`` (restored); binary logging off: this instance is only read."""
    port, log = free_port(), base / "error.log"
    proc = subprocess.Popen(
        [
            *("/usr/sbin/mariadbd", "--no-defaults", f"--datadir={base / 'data'}", f"--port={port}"),
            *("--bind-address=127.0.0.1", f"--socket={base / 's.sock'}", "--user=root", f"--log-error={log}"),
            *(f"--pid-file={base / 'mariadbd.pid'}", "--skip-name-resolve", f"--server-id={server_id}"),
            *("--innodb-buffer-pool-size=32M", "--performance-schema=OFF", NO_NATIVE_AIO),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(proc, port, 60, log)
    except BaseException:
        stop(proc)
        raise RuntimeError(f"mariadbd on the restored data dir failed:\n{tail(log)}") from None
    return MariaDBServer(base=base, port=port, server_id=server_id, password=password, proc=proc)


def start_postgresql_on(base: Path, password: str) -> PostgreSQLServer:
    """postgres on ``base/data`` (restored; owned by postgres): it replays the backup's WAL, then serves."""
    return _launch(base, password)
