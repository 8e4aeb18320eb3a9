"""Private real MySQL servers for tests: 9.7 LTS (Debian sid, chrooted) and 8.0.31 (Oracle's build).

Both come from hack/build-mysql.sh (cached under ~/.cache/kubetrove/); neither runs from bookworm's
paths directly:

- **9.7** is sid's ``mysql-server-core``, built against a newer glibc than the host's, so mysqld runs
  inside the sid root: ``unshare -m`` gives it a private mount namespace where a fresh ``/proc`` is
  mounted in the root and the server's host directory (``base``) is bind-mounted at ``/srv/kubetrove``,
  then ``chroot``. Every server sees its own files at the same path inside, the host sees them under
  ``base`` (datadir, socket, error log), and TCP on loopback is shared (the network is not unshared).
  The host's ``/tmp`` is bind-mounted at the root's ``/tmp`` too, so a directory under ``/tmp`` has the
  same path for the server and for an agent on the host (``CLONE LOCAL DATA DIRECTORY``, as a pod's
  engine and agent containers share an emptyDir at one path).
  The mounts vanish with the namespace when mysqld exits: nothing to unmount.
- **8.0.31** is the generic Linux tarball from a Maven Central test jar, run directly on the host.

``unshare`` and ``chroot`` exec in turn, so the PID we hold is mysqld's own and stop() signals exactly it.
Each server has a binary log with GTIDs (replication tests make one a replica of another) and the admin
account ``kubetrove@%`` with every privilege, identified by MySQL's default ``caching_sha2_password``
(its first TCP login without TLS fetches the server's RSA key: the agent needs ``cryptography``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from kubetrove.agent.engines.config import EngineConfig
from tests.integration.servers._proc import NO_NATIVE_AIO, cache_dir, free_port, stop, tail, wait_for_port

ADMIN = "kubetrove"
# Where a 9.7 server's ``base`` appears inside the sid root (hack/build-mysql.sh creates the directory).
INSIDE = "/srv/kubetrove"
VERSIONS = ("9.7", "8.0")
SID_ROOT = "mysql-9.7-sid/root"
GENERIC_80 = "mysql-8.0.31"


def sid_root() -> Path:
    return cache_dir() / SID_ROOT


def generic_80() -> Path:
    return cache_dir() / GENERIC_80


@dataclass
class MySQLServer:
    """One running mysqld (``version`` "9.7" or "8.0")."""

    version: str
    base: Path
    port: int
    server_id: int
    password: str
    proc: subprocess.Popen[bytes] = field(repr=False)
    extra: tuple[str, ...] = ()  # options beyond the defaults, kept for restart
    config: bool = False  # reads base/kubetrove.cnf (the product's option file)

    @property
    def log(self) -> Path:
        return self.base / "error.log"

    @property
    def socket(self) -> Path:
        return self.base / "s.sock"

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

    def engine_config(self) -> EngineConfig:
        """How an agent reaches this server."""
        return EngineConfig(host="127.0.0.1", port=self.port, user=ADMIN, password=self.password)

    def stop(self) -> None:
        """SIGKILL mysqld by its PID and delete its files: they are thrown away, so a clean shutdown
        (seconds per server on a loaded machine, a minute when a commit waits for a semi-sync
        acknowledgement) buys nothing."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        shutil.rmtree(self.base, ignore_errors=True)


def _argv(version: str, base: Path, mysqld_args: list[str], config: bool = False) -> list[str]:
    """The command that runs mysqld with ``mysqld_args`` (paths already as mysqld sees them).

    ``config``: read ``base/kubetrove.cnf`` (the product's rendered option file) instead of no file at all.
    """
    defaults = f"--defaults-file={_paths(version, base)}/kubetrove.cnf" if config else "--no-defaults"
    if version == "8.0":
        home = generic_80()
        return [
            str(home / "bin" / "mysqld"),
            defaults,
            f"--basedir={home}",
            f"--lc-messages-dir={home / 'share'}",
            *mysqld_args,
        ]
    root = sid_root()
    # $1 root, $2 base; the rest is mysqld's argv. `exec` keeps the PID: unshare -> sh -> chroot -> mysqld.
    script = (
        f'mount -t proc proc "$1/proc" && mount --bind "$2" "$1{INSIDE}" && mount --bind /tmp "$1/tmp"'
        ' && r="$1" && shift 2 && exec chroot "$r" "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "mysqld-sid",
            str(root), str(base), "/usr/sbin/mysqld", defaults, *mysqld_args]  # fmt: skip


def _paths(version: str, base: Path) -> str:
    """``base`` as mysqld sees it."""
    return INSIDE if version == "9.7" else str(base)


def _check_installed(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"MySQL test servers are {VERSIONS}, not {version!r}")
    marker = (sid_root().parent if version == "9.7" else generic_80()) / ".complete"
    if not marker.exists():
        raise RuntimeError(f"MySQL {version} is not installed ({marker} missing): run hack/build-mysql.sh")


def start_mysql(
    base: Path,
    server_id: int = 1,
    *,
    version: str = "9.7",
    extra: tuple[str, ...] = (),
    config: str = "",
    port: int = 0,
    password: str = "",
) -> MySQLServer:
    """Initialize a datadir under ``base`` and start mysqld ``version`` on a free port; raise if it cannot.

    ``config``: an option file's text (the product's ``render_config``) the server reads at every start.
    """
    _check_installed(version)
    base.mkdir(parents=True, exist_ok=True)
    if config:
        (base / "kubetrove.cnf").write_text(config)
    inside = _paths(version, base)
    for sub in ("tmp", "files"):
        (base / sub).mkdir(exist_ok=True)
    init_args = [f"--datadir={inside}/data", "--user=root", "--initialize-insecure", NO_NATIVE_AIO,
                 f"--log-error={inside}/init.log", "--innodb-redo-log-capacity=16M"]  # fmt: skip
    init = subprocess.run(
        _argv(version, base, init_args),
        capture_output=True,
        check=False,
    )
    if init.returncode != 0:
        raise RuntimeError(
            f"mysqld {version} --initialize-insecure failed ({init.returncode}):"
            f" {init.stderr.decode(errors='replace')}\n{tail(base / 'init.log')}"
        )
    port = port or free_port()
    proc = _launch(version, base, port, server_id, extra, bool(config))
    try:
        wait_for_port(proc, port, 120, base / "error.log")
        password = password or secrets.token_urlsafe(12)
        # --initialize-insecure leaves root@localhost without a password; the socket is in ``base``.
        root = pymysql.connect(unix_socket=str(base / "s.sock"), user="root", password="", autocommit=True)
        try:
            with root.cursor() as cur:
                # sql_log_bin = 0: the admin account is local set-up, not a transaction replicas should see
                # (it would be a GTID only this member has: errant on every other one).
                cur.execute("SET SESSION sql_log_bin = 0")
                cur.execute("SELECT @@GLOBAL.super_read_only")
                fenced = cur.fetchone()[0]  # a cluster member starts fenced: even root cannot write
                cur.execute("SET GLOBAL super_read_only = OFF")
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (ADMIN, password))
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO `{ADMIN}`@'%' WITH GRANT OPTION")
                if fenced:
                    cur.execute("SET GLOBAL super_read_only = ON")
        finally:
            root.close()
    except BaseException as exc:
        stop(proc)
        logs = f"{tail(base / 'stderr.log')}\n{tail(base / 'error.log')}"
        raise RuntimeError(f"mysqld {version} failed to start: {exc}\n{logs}") from None
    return MySQLServer(version, base, port, server_id, password, proc, extra, bool(config))


def start_mysql_on(
    base: Path, server_id: int, password: str, version: str = "9.7", config: str = ""
) -> MySQLServer:
    """Start mysqld on the data directory already in ``base/data`` (a restore placed it there before the
    server starts, as the restore init container does); its accounts are the backup's (``password``).
    ``config``: an option file's text (the product's ``render_config``) the server reads at every start."""
    _check_installed(version)
    for sub in ("tmp", "files"):
        (base / sub).mkdir(exist_ok=True)
    if config:
        (base / "kubetrove.cnf").write_text(config)
    port = free_port()
    proc = _launch(version, base, port, server_id, (), bool(config))
    try:
        wait_for_port(proc, port, 120, base / "error.log")
    except BaseException:
        stop(proc)
        raise
    return MySQLServer(version, base, port, server_id, password, proc, config=bool(config))


def rebuild_mysql(server: MySQLServer) -> None:
    """Stop ``server``, wipe its datadir and start it empty on the same port with the same admin account.

    What deleting a member's volume claim does to a pod (docs/clustering.md, "Rebuilding a member").
    """
    stop(server.proc, grace=60)
    shutil.rmtree(server.base / "data")
    for binlog in [*server.base.glob("binlog.*"), *server.base.glob("relay-bin*")]:
        binlog.unlink()
    fresh = start_mysql(
        server.base,
        server.server_id,
        version=server.version,
        extra=server.extra,
        config=(server.base / "kubetrove.cnf").read_text() if server.config else "",
        port=server.port,
        password=server.password,
    )
    server.proc = fresh.proc


def restart_mysql(server: MySQLServer, extra: tuple[str, ...] | None = None) -> None:
    """Start ``server`` again on its datadir and port (after it was stopped or SIGKILLed)."""
    if extra is not None:
        server.extra = extra
    server.proc = _launch(
        server.version, server.base, server.port, server.server_id, server.extra, server.config
    )
    try:
        wait_for_port(server.proc, server.port, 120, server.log)
    except BaseException:
        stop(server.proc)
        raise


def _launch(
    version: str, base: Path, port: int, server_id: int, extra: tuple[str, ...], config: bool
) -> subprocess.Popen[bytes]:
    inside = _paths(version, base)
    args = [
        f"--datadir={inside}/data",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={inside}/s.sock",
        "--user=root",
        f"--pid-file={inside}/mysqld.pid",
        f"--log-error={inside}/error.log",
        f"--tmpdir={inside}/tmp",
        f"--secure-file-priv={inside}/files",
        "--skip-name-resolve",
        f"--server-id={server_id}",
        f"--log-bin={inside}/binlog",
        f"--relay-log={inside}/relay-bin",
        "--log-replica-updates=ON",
        "--gtid-mode=ON",
        "--enforce-gtid-consistency=ON",
        "--mysqlx=OFF",
        # Small: up to five of these run at once on a 2-core test machine shared with other tiers.
        "--innodb-buffer-pool-size=32M",
        "--innodb-redo-log-capacity=16M",
        "--performance-schema=OFF",
        NO_NATIVE_AIO,
        *extra,
    ]
    # stderr: what unshare, mount or chroot say if they fail before mysqld has its error log.
    with (base / "stderr.log").open("ab") as err:
        return subprocess.Popen(_argv(version, base, args, config), stdout=subprocess.DEVNULL, stderr=err)


# The MySQL 9.7 client tools (mysqldump, mysql) as the agent runs them, by name from PATH: inside the sid
# root like the server, with the host's /tmp bind-mounted so the agent's work directories (tempfile's,
# under /tmp) and its --defaults-file are at the same path inside. stdin and stdout pass through.
TOOL_WRAPPER = """#!/bin/sh
exec unshare --mount --propagation private sh -c \\
  'mount -t proc proc "$0/proc" && mount --bind /tmp "$0/tmp" && exec chroot "$0" "$@"' \\
  {root} /usr/bin/{tool} "$@"
"""
TOOLS = ("mysqldump", "mysql")


def sid_tools(bin_dir: Path) -> Path:
    """Write ``mysqldump`` and ``mysql`` wrappers into ``bin_dir`` (for PATH); the host's are MariaDB's."""
    _check_installed("9.7")
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(TOOL_WRAPPER.format(root=sid_root(), tool=tool))
        path.chmod(0o755)
    return bin_dir
