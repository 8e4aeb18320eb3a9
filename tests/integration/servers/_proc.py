"""Process helpers for the test servers: free loopback ports, readiness polling, stop by PID."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

# InnoDB's simulated AIO instead of the kernel's (libaio/io_uring) in every test mysqld/mariadbd: each
# server's native AIO takes io_setup contexts from the machine-wide fs.aio-max-nr (65536), which a few
# dozen servers (integration, e2e pods, an interrupted run's orphans) exhaust: "io_setup() failed with
# EAGAIN" and InnoDB will not start. https://dev.mysql.com/doc/refman/8.4/en/innodb-linux-native-aio.html
NO_NATIVE_AIO = "--innodb-use-native-aio=OFF"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(
    proc: subprocess.Popen[bytes], port: int, timeout: float, log: Path, host: str = "127.0.0.1"
) -> None:
    """Poll until ``host:port`` accepts connections; raise with the log tail if the process dies or stalls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening:\n{tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        time.sleep(0.5)
    raise RuntimeError(f"server did not listen on {host}:{port} within {timeout:.0f} s:\n{tail(log)}")


def stop(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM this one process (by its PID), then SIGKILL it if it outlives ``grace``."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def tail(log: Path, lines: int = 40) -> str:
    """The last lines of a log file (for failure messages)."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"


def cache_dir() -> Path:
    """Where hack/ scripts cache engine builds (KUBETROVE_CACHE or ~/.cache/kubetrove)."""
    return Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))


@dataclasses.dataclass
class LocalServer:
    """A server process this test session started: where to connect as its admin, and how to stop it."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]
    user: str
    password: str
    startup_seconds: float = 0.0
    host: str = "127.0.0.1"
    stop_grace: float = 30.0

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL after ``stop_grace``)."""
        stop(self.proc, grace=self.stop_grace)
