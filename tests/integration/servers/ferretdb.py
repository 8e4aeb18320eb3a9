"""One private FerretDB v1.24 (MongoDB wire protocol on SQLite) on 127.0.0.1, from hack/build-ferretdb.sh.

No mongod can be obtained here; FerretDB stands in for what it implements. ``--test-enable-new-auth``
turns on SCRAM users stored by FerretDB itself (createUser/updateUser/dropUser/usersInfo, roles: []
only); ``--setup-*`` creates the agent's admin login at start-up. FerretDB v1 has no authorization
(any authenticated user may do anything) and no replica set commands: see docs/datastores.md.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.integration.servers._proc import LocalServer, cache_dir, free_port, stop, wait_for_port

VERSION = "v1.24.2"
REPO = Path(__file__).resolve().parents[3]
ADMIN = ("root", "kubetrove-root-pw")


FerretDBServer = LocalServer


def binary() -> Path:
    """The FerretDB binary, built from the Go module proxy on first use (idempotent; prints progress)."""
    path = cache_dir() / f"ferretdb-{VERSION}" / "ferretdb"
    if not path.exists():
        env = {**os.environ, "FERRETDB_VERSION": VERSION}
        subprocess.run(["bash", str(REPO / "hack" / "build-ferretdb.sh")], check=True, env=env)
    return path


def start(workdir: Path) -> FerretDBServer:
    """Start FerretDB on a free port with SQLite files under ``workdir``; wait until it listens."""
    exe = binary()
    port = free_port()
    (workdir / "data").mkdir(parents=True)
    (workdir / "state").mkdir()
    cmd = [
        str(exe),
        "--handler=sqlite",
        f"--sqlite-url=file:{workdir}/data/",
        f"--listen-addr=127.0.0.1:{port}",
        f"--state-dir={workdir}/state",
        f"--debug-addr=127.0.0.1:{free_port()}",
        "--telemetry=disable",  # no network from tests
        "--test-enable-new-auth",
        "--setup-database=admin",
        f"--setup-username={ADMIN[0]}",
        f"--setup-password={ADMIN[1]}",
    ]
    log = workdir / "ferretdb.log"
    began = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(proc, port, 60, log)
    except BaseException:
        stop(proc)
        raise
    return LocalServer(port, workdir, proc, *ADMIN, startup_seconds=time.monotonic() - began)
