"""Background processes of the local cluster: start detached with a log file, check, stop by PID.

Invariant: we only ever signal a PID whose /proc/<pid>/exe is the executable we started there, so a
stale state.json can never make `down` kill an unrelated process that reused the PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def start(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Start argv in its own session (it outlives the caller), stdout+stderr appended to log; its PID.
    ``env``: extra environment variables on top of ours."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(  # noqa: S603 (argv built from our own paths and flags)
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    return proc.pid


def exe_of(pid: int) -> str | None:
    """The executable PID runs (None if gone or a zombie); ' (deleted)' stripped after a rebuild."""
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return None


def running(pid: int, exe: str) -> bool:
    """Is PID alive and still running exe?"""
    return exe_of(pid) == exe


def stop(pid: int, exe: str, grace: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds; True if it was ours and is now gone."""
    if not running(pid, exe):
        return False
    os.kill(pid, signal.SIGTERM)
    if not wait_for(lambda: not running(pid, exe), grace, 0.1):
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not running(pid, exe), 5.0, 0.1)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if PID is our child (fixture case), so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    """Poll check() until it is true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file ('' if there is none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size (VmHWM) of PID in KiB, 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
