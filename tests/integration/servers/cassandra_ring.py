"""A ring of real Cassandra 5.0 nodes, one per loopback address (127.0.0.2, 127.0.0.3, ...).

Every node binds its own address with the SAME storage and native ports (Cassandra assumes one
storage port per ring) and its own JMX port (JMX listens on 127.0.0.1 only, cassandra-env.sh's
LOCAL_JMX). The first address is the seed. Nodes start one at a time: a node bootstraps only when no
other node is joining (cassandra.consistent.rangemovement, on by default), and the next one starts
when ``nodetool status`` shows every started node UN (Up, Normal).

Test settings (system properties, https://cassandra.apache.org/doc/5.0/cassandra/managing/configuration/):
- ``cassandra.ring_delay_ms``: a joining node sleeps this long twice (to learn the ring, then for
  pending ranges to settle on every node after it announced its tokens); 30 s by default. Loopback
  gossip converges within a few rounds of 1 s, so 5 s is plenty here.
- ``cassandra.skip_wait_for_gossip_to_settle=0``: no polling for gossip to settle before serving CQL.
- ``cassandra.superuser_setup_delay_ms=0``: the seed creates the default superuser at once.

Authentication is on (PasswordAuthenticator, superuser cassandra/cassandra), as in cassandra.py.
``system_auth`` starts with Cassandra's default replication (1 in 5.0); raising it is the agent's job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.integration.servers import cassandra
from tests.integration.servers._proc import free_port, stop, tail, wait_for_port

SEED_INDEX = 0
JOIN_TIMEOUT = 300.0  # per node: ~20 s for the seed, ~30 s per joining node on an idle machine
TEST_PROPERTIES = {
    "cassandra.ring_delay_ms": "5000",
    "cassandra.skip_wait_for_gossip_to_settle": "0",
    "cassandra.superuser_setup_delay_ms": "0",
}
# "UN  127.0.0.2  104.5 KiB  16  ?  <host id>  rack1" (the ownership column is "?" without a keyspace).
_STATUS_LINE = re.compile(
    r"^(?P<state>[UD][NLJM])\s+(?P<address>[\d.]+)\s+(?P<load>\?|[\d.]+ \w+)\s+(?P<tokens>\d+)\s+"
    r"\S+\s+(?P<host_id>[0-9a-f-]{36})\s+(?P<rack>\S+)$"
)

_YAML = """\
cluster_name: kubetrove-ring
num_tokens: 16
allocate_tokens_for_local_replication_factor: 3
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{seed}:{storage_port}"
listen_address: {address}
rpc_address: {address}
storage_port: {storage_port}
native_transport_port: {native_port}
start_native_transport: true
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
roles_validity: 0ms
permissions_validity: 0ms
credentials_validity: 0ms
commitlog_sync: periodic
commitlog_sync_period: 10000ms
auto_snapshot: false
data_file_directories: [{d}/data]
commitlog_directory: {d}/commitlog
hints_directory: {d}/hints
saved_caches_directory: {d}/saved_caches
cdc_raw_directory: {d}/cdc_raw
{extra}"""


@dataclasses.dataclass(frozen=True)
class NodeState:
    """One line of ``nodetool status``."""

    state: str  # "UN", "DN", "UJ", ...
    address: str
    load: str
    tokens: int
    host_id: str


@dataclasses.dataclass
class RingNode:
    """One node: its address, its directory, its JMX port and (while running) its process."""

    address: str
    workdir: Path
    jmx_port: int
    native_port: int
    proc: subprocess.Popen[bytes] | None = None
    ssl_context: Any = None  # spec.tls: how sessions to this node speak TLS; None = plaintext
    jolokia_port: int = dataclasses.field(default_factory=free_port)  # the agent's ring view (127.0.0.1)

    @property
    def server(self) -> cassandra.CassandraServer:
        """This node as a ``CassandraServer`` (``session()`` to this node only, superuser login)."""
        assert self.proc is not None, f"{self.address} is not running"
        server = cassandra.CassandraServer(
            self.native_port, self.workdir, self.proc, *cassandra.SUPERUSER, host=self.address, stop_grace=60
        )
        server.jmx_port, server.jolokia_port = self.jmx_port, self.jolokia_port
        server.ssl_context = self.ssl_context
        return server

    @property
    def system_log(self) -> Path:
        return self.workdir / "system.log"

    def launch(self, heap: str, properties: dict[str, str]) -> None:
        """Start the JVM (its config already written); returns at once."""
        cmd = cassandra.jvm_command(self.workdir, self.jmx_port, heap, properties, self.jolokia_port)
        with (self.workdir / "stdout.log").open("ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill(self) -> None:
        """SIGKILL by PID: a crash (no drain, no flush; the commit log since the last sync is lost)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM by PID (Cassandra's shutdown hook drains), SIGKILL after 60 s."""
        if self.proc is not None:
            stop(self.proc, grace=60)

    def wipe(self) -> None:
        """Delete the (stopped) node's data, keeping its config: it starts as a brand-new node."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.address} is still running"
        for entry in self.workdir.iterdir():
            if entry.name != "conf":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


@dataclasses.dataclass
class Ring:
    """Running nodes, the ring-wide ports, and ways to look at and talk to the ring."""

    nodes: list[RingNode]
    storage_port: int
    native_port: int
    heap: str
    nodetool_bin: Path
    startup_seconds: float = 0.0
    join_seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    def nodetool(self, *args: str, via: int = SEED_INDEX, timeout: float = 120) -> str:
        """Run nodetool against node ``via`` (its JMX port); stdout, or RuntimeError with stderr."""
        node = self.nodes[via]
        done = subprocess.run(
            [str(self.nodetool_bin), "-h", "127.0.0.1", "-p", str(node.jmx_port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nodetool {' '.join(args)} via {node.address}: {done.stderr or done.stdout}")
        return done.stdout

    def status(self, via: int = SEED_INDEX) -> dict[str, NodeState]:
        """address -> state, as node ``via`` sees the ring."""
        states = {}
        for line in self.nodetool("status", via=via).splitlines():
            m = _STATUS_LINE.match(line.strip())
            if m:
                states[m["address"]] = NodeState(
                    m["state"], m["address"], m["load"], int(m["tokens"]), m["host_id"]
                )
        return states

    def wait_for(self, wanted: dict[str, str], via: int = SEED_INDEX, timeout: float = JOIN_TIMEOUT) -> None:
        """Poll ``nodetool status`` on node ``via`` until every address in ``wanted`` has its state."""
        deadline, seen = time.monotonic() + timeout, "nothing yet"
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                states = self.status(via)
                seen = ", ".join(f"{a} {s.state}" for a, s in sorted(states.items())) or "no nodes"
                if all(a in states and states[a].state == s for a, s in wanted.items()):
                    return
            time.sleep(2)
        logs = "\n".join(f"--- {n.address}\n{tail(n.system_log, 15)}" for n in self.nodes)
        raise RuntimeError(f"ring never reached {wanted} within {timeout:.0f} s (last: {seen})\n{logs}")

    def _check_alive(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.returncode is None and node.proc.poll() is not None:
                raise RuntimeError(
                    f"{node.address} exited with {node.proc.returncode}:\n{tail(node.system_log)}"
                )

    def start_node(
        self, node: RingNode, properties: dict[str, str] | None = None, login: bool = True
    ) -> float:
        """Launch ``node`` and wait until it serves CQL (and, with ``login``, a superuser login works)."""
        began = time.monotonic()
        node.launch(self.heap, {**TEST_PROPERTIES, **(properties or {})})
        assert node.proc is not None
        try:
            log = node.workdir / "stdout.log"
            wait_for_port(node.proc, self.native_port, JOIN_TIMEOUT, log, host=node.address)
            if login:
                cassandra.wait_for_login(node.server, began + JOIN_TIMEOUT, node.system_log)
        except BaseException:
            node.stop()
            raise
        return time.monotonic() - began

    @contextlib.contextmanager
    def session(self, user: str | None = None, password: str | None = None) -> Iterator[Any]:
        """A cassandra-driver session to the whole ring (token-aware, any node coordinates)."""
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import Cluster

        user, password = user or cassandra.SUPERUSER[0], password or cassandra.SUPERUSER[1]
        cluster = Cluster(
            self.addresses,
            port=self.native_port,
            auth_provider=PlainTextAuthProvider(user, password),
            protocol_version=5,
            connect_timeout=5,
            ssl_context=self.nodes[SEED_INDEX].ssl_context,
        )
        try:
            yield cluster.connect()
        finally:
            cluster.shutdown()

    def stop(self) -> None:
        """SIGTERM every node by its PID at once (each drains on its own), then wait for each."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                os.kill(node.proc.pid, signal.SIGTERM)
        for node in self.nodes:
            node.stop()  # waits, SIGKILL after the grace period


def common_free_port(addresses: Sequence[str]) -> int:
    """A TCP port free on every address (the ring shares its storage and native ports)."""
    for _ in range(50):
        port = free_port(addresses[0])
        if all(_bindable(a, port) for a in addresses[1:]):
            return port
    raise RuntimeError(f"no TCP port free on all of {', '.join(addresses)}")


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
        return True


def write_config(ring: Ring, node: RingNode, extra: str = "") -> None:
    """conf/cassandra.yaml and conf/logback.xml of ``node`` (``extra``: more YAML, e.g. initial_token)."""
    conf = node.workdir / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "cassandra.yaml").write_text(
        _YAML.format(
            seed=ring.nodes[SEED_INDEX].address,
            address=node.address,
            storage_port=ring.storage_port,
            native_port=ring.native_port,
            d=node.workdir,
            extra=extra,
        )
    )
    cassandra.write_logback(node.workdir)


def plan(workdir: Path, first_address: int = 2, size: int = 3, heap: str = "512m") -> Ring:
    """A ring's addresses, directories and ports (nothing started): 127.0.0.<first_address> onward."""
    addresses = [f"127.0.0.{first_address + i}" for i in range(size)]
    native_port = common_free_port(addresses)
    storage_port = common_free_port(addresses)
    nodes = [
        RingNode(address=a, workdir=workdir / a, jmx_port=free_port(), native_port=native_port)
        for a in addresses
    ]
    for node in nodes:
        node.workdir.mkdir(parents=True)
    nodetool_bin = cassandra.nodetool_wrapper(workdir / "bin")
    return Ring(nodes, storage_port, native_port, heap, nodetool_bin)


def start_ring(
    workdir: Path,
    first_address: int = 2,
    size: int = 3,
    heap: str = "512m",
    extra_yaml: Sequence[str] = (),
) -> Ring:
    """Start ``size`` nodes one at a time and wait for all of them UN; stops them all on failure.

    ``extra_yaml[i]`` is appended to node i's cassandra.yaml (a restore gives each node its tokens).
    """
    return form(plan(workdir, first_address, size, heap), extra_yaml)


def form(ring: Ring, extra_yaml: Sequence[str] = ()) -> Ring:
    """Start a planned ring's nodes one at a time (their directories may already hold restored data).

    A restored ring (``extra_yaml``) brings its own system_auth, possibly replicated to all three nodes:
    the superuser login reads at QUORUM, so it is checked once every node is up, not per node.
    """
    cassandra.hold_jvm_turn()  # the machine's Cassandra turn (servers/cassandra.py says why)
    cassandra.stop_on_release(ring.stop)
    began = time.monotonic()
    try:
        for i, node in enumerate(ring.nodes):
            write_config(ring, node, extra_yaml[i] if i < len(extra_yaml) else "")
            ring.join_seconds.append(ring.start_node(node, login=not extra_yaml))
            ring.wait_for({n.address: "UN" for n in ring.nodes[: i + 1]})
        for node in ring.nodes:
            cassandra.wait_for_login(node.server, time.monotonic() + JOIN_TIMEOUT, node.system_log)
    except BaseException:
        ring.stop()
        raise
    ring.startup_seconds = time.monotonic() - began
    return ring
