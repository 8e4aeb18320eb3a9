"""One private Apache Cassandra 5.0 node on 127.0.0.1 in a temp dir (jars from hack/fetch-cassandra.sh).

Authentication and authorization are on (PasswordAuthenticator + CassandraAuthorizer), as the agent's
user routes need; the built-in superuser is cassandra/cassandra. Role and permission caches are off
(validity 0 ms) so a GRANT/REVOKE is visible to the very next request, which the tests rely on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from tests.integration.servers._proc import LocalServer, cache_dir, free_port, tail, wait_for_port

VERSION = "5.0.9"
JOLOKIA_VERSION = "2.6.0"  # hack/fetch-jolokia.sh's (the image's: hack/images/recipes.py)
REPO = Path(__file__).resolve().parents[3]
SUPERUSER = ("cassandra", "cassandra")
START_TIMEOUT = 240.0  # 30-90 s is typical on 2 shared cores; a cold JIT on a busy machine takes longer

# conf/jvm17-server.options of Cassandra 5.0 (JPMS section + netty), which bin/cassandra would add on Java 17.
_JVM17 = [
    "-Djdk.attach.allowAttachSelf=true",
    *(
        f"--add-exports={m}=ALL-UNNAMED"
        for m in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ),
    *(
        f"--add-opens={m}=ALL-UNNAMED"
        for m in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
        )
    ),
    "-Dio.netty.tryReflectionSetAccessible=true",
]

_YAML = """\
cluster_name: kubetrove-test
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:{storage_port}"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
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
"""

# The image's logback.xml (the console and the system_logs virtual table the agent reads), with a file in
# the node's directory instead of the console: the failure messages quote its tail.
_IMAGE_LOGBACK = REPO / "hack" / "images" / "files" / "cassandra-conf" / "logback.xml"
_JOLOKIA_POLICY = (
    REPO / "hack" / "images" / "files" / "jolokia-conf" / "jolokia-access.xml"
)  # the image's (read-only)
_CONSOLE = '<appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">'
_FILE = '<appender name="STDOUT" class="ch.qos.logback.core.FileAppender"><file>{d}/system.log</file>'


class CassandraServer(LocalServer):
    """A running node (superuser login) and sessions to it."""

    jmx_port: int = 0  # local-only JMX (nodetool); set by start()
    # spec.tls: the context sessions speak TLS with (the node may refuse plaintext CQL); None = plaintext.
    ssl_context: Any = None
    jolokia_port: int = 0  # the Jolokia agent on 127.0.0.1 (the agent's ring view); set by start()

    def agent_options(self) -> dict[str, str]:
        """EngineConfig.options for an agent in front of this node: its JMX and Jolokia ports."""
        return {"jmx_port": str(self.jmx_port), "jolokia_port": str(self.jolokia_port)}

    @contextlib.contextmanager
    def session(self, user: str | None = None, password: str | None = None) -> Iterator[Any]:
        """A cassandra-driver session to this node only, as ``user`` (the superuser by default)."""
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy

        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([self.host]))
        cluster = Cluster(
            [self.host],
            port=self.port,
            auth_provider=PlainTextAuthProvider(user or self.user, password or self.password),
            protocol_version=5,
            # 30 s, not 5: with the e2e tier beside this one on 2 cores a live node once took longer than
            # 5 s to accept a connection (NoHostAvailable in a full run while the ring was 3x UN).
            connect_timeout=30,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            ssl_context=self.ssl_context,
        )
        try:
            yield cluster.connect()
        finally:
            cluster.shutdown()


def lib_dir() -> Path:
    """The jar directory, fetched from Maven Central on first use (idempotent; prints progress)."""
    lib = cache_dir() / f"cassandra-{VERSION}" / "lib"
    if not (lib.parent / ".complete").exists():
        subprocess.run(
            ["bash", str(REPO / "hack" / "fetch-cassandra.sh")],
            check=True,
            env={**os.environ, "CASSANDRA_VERSION": VERSION},
        )
    return lib


def jolokia_agent() -> Path:
    """The Jolokia JVM agent jar, fetched from Maven Central on first use (hack/fetch-jolokia.sh)."""
    home = cache_dir() / f"jolokia-{JOLOKIA_VERSION}"
    if not (home / ".complete").exists():
        subprocess.run(
            ["bash", str(REPO / "hack" / "fetch-jolokia.sh")],
            check=True,
            env={**os.environ, "JOLOKIA_VERSION": JOLOKIA_VERSION},
        )
    return home / "lib" / "jolokia-agent.jar"


def jvm_command(
    workdir: Path, jmx_port: int, heap: str, properties: dict[str, str], jolokia_port: int
) -> list[str]:
    """``java ... CassandraDaemon`` on ``workdir/conf`` (what bin/cassandra runs on Java 17, and what the
    image's launcher adds: the Jolokia agent on 127.0.0.1:``jolokia_port`` with the image's policy).

    ``properties`` become ``-D`` system properties (startup flags: ring delay, replace address, ...).
    """
    lib = lib_dir()
    conf = workdir / "conf"
    jamm = next(lib.glob("jamm-*.jar"))
    jolokia = (
        f"host=127.0.0.1,port={jolokia_port},discoveryEnabled=false,policyLocation=file://{_JOLOKIA_POLICY}"
    )
    return [
        "java",
        "-Xms256m",
        f"-Xmx{heap}",
        "-Xss512k",
        "-XX:+UseG1GC",
        f"-javaagent:{jamm}",
        f"-javaagent:{jolokia_agent()}={jolokia}",
        *_JVM17,
        f"-Dcassandra.config=file://{conf}/cassandra.yaml",
        f"-Dlogback.configurationFile={conf}/logback.xml",
        f"-Dcassandra.storagedir={workdir}",
        f"-Dcassandra.logdir={workdir}",
        "-Dcassandra-foreground=yes",
        # JMX on 127.0.0.1 only, no auth (cassandra-env.sh's LOCAL_JMX=yes): what nodetool talks to.
        f"-Dcassandra.jmx.local.port={jmx_port}",
        *(f"-D{k}={v}" for k, v in properties.items()),
        "-cp",
        f"{conf}:{lib}/*",
        "org.apache.cassandra.service.CassandraDaemon",
    ]


# One test process at a time runs Cassandra JVMs on this machine: this tier's nodes and rings, and the
# e2e tier's Cassandra pods (make test runs the two tiers side by side). Six JVMs on 2 shared cores
# starved each other in a full run: CQL connects timed out, a pod ring's restore failed. The turn is
# taken before the process's first JVM starts; it is given back by release_jvm_turn (the integration
# tier runs its Cassandra tests first and releases after the last one: tests/integration/conftest.py)
# or when the process exits (its fd closes).
JVM_TURN = Path(tempfile.gettempdir()) / "kubetrove-cassandra-jvms.lock"
_turn: list[IO[str]] = []
_stops: list[Callable[[], None]] = []  # how to stop every node or ring started under the turn


def hold_jvm_turn() -> None:
    """Wait for, then keep, this machine's Cassandra turn (idempotent within a process)."""
    if _turn:
        return
    fh = JVM_TURN.open("a")
    started = time.monotonic()
    fcntl.flock(fh, fcntl.LOCK_EX)
    waited = time.monotonic() - started
    if waited >= 1:
        print(f"\ncassandra: waited {waited:.0f} s for another test process's JVMs to stop", file=sys.stderr)
    _turn.append(fh)


def stop_on_release(stop: Callable[[], None]) -> None:
    """``stop`` (a node's or a ring's) runs when the turn is given back early."""
    _stops.append(stop)


def release_jvm_turn() -> None:
    """Stop every JVM started under the turn (stops are idempotent), then give the turn back."""
    while _stops:
        _stops.pop()()
    while _turn:
        _turn.pop().close()  # closing the fd drops the flock


def write_logback(workdir: Path) -> None:
    """conf/logback.xml: the image's, writing system.log in ``workdir`` instead of the console."""
    image = _IMAGE_LOGBACK.read_text()
    if _CONSOLE not in image:
        raise AssertionError(f"{_IMAGE_LOGBACK} has no console appender {_CONSOLE!r} to redirect")
    (workdir / "conf" / "logback.xml").write_text(image.replace(_CONSOLE, _FILE.format(d=workdir)))


def start(workdir: Path, heap: str = "768m", extra: str = "", ssl_context: Any = None) -> CassandraServer:
    """Write the config (``extra``: more YAML), start the JVM in the foreground and wait until the
    superuser can log in (over TLS with ``ssl_context``)."""
    hold_jvm_turn()
    native_port, storage_port, jmx_port, jolokia_port = free_port(), free_port(), free_port(), free_port()
    conf = workdir / "conf"
    conf.mkdir(parents=True)
    (conf / "cassandra.yaml").write_text(
        _YAML.format(storage_port=storage_port, native_port=native_port, d=workdir) + extra
    )
    write_logback(workdir)
    # One node: no gossip to settle, no ring to wait for, and the default superuser created at once.
    cmd = jvm_command(
        workdir,
        jmx_port,
        heap,
        {
            "cassandra.skip_wait_for_gossip_to_settle": "0",
            "cassandra.ring_delay_ms": "100",
            "cassandra.superuser_setup_delay_ms": "0",
        },
        jolokia_port,
    )
    log = workdir / "stdout.log"
    began = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = CassandraServer(native_port, workdir, proc, *SUPERUSER, stop_grace=60)
    server.jmx_port, server.jolokia_port = jmx_port, jolokia_port
    server.ssl_context = ssl_context
    stop_on_release(server.stop)
    try:
        wait_for_port(proc, native_port, START_TIMEOUT, log)
        wait_for_login(server, began + START_TIMEOUT, workdir / "system.log")
    except BaseException:
        server.stop()
        raise
    server.startup_seconds = time.monotonic() - began
    return server


def nodetool_wrapper(bin_dir: Path) -> Path:
    """Write ``bin_dir/nodetool`` (NodeTool from the same jars; the image has bin/nodetool) and return it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "nodetool"
    flags = " ".join(_JVM17)  # bin/nodetool adds them too (jvm17-clients.options): FileUtils needs them
    script.write_text(
        "#!/bin/sh\n"
        f'exec java -Xmx128m -XX:+UseSerialGC {flags} -cp "{lib_dir()}/*"'
        ' org.apache.cassandra.tools.NodeTool "$@"\n'
    )
    script.chmod(0o755)
    return script


def wait_for_login(server: CassandraServer, deadline: float, log: Path) -> None:
    """The native port opens before the default superuser exists; poll a real login until it works."""
    from cassandra.cluster import NoHostAvailable

    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with server.session() as s:
                s.execute("SELECT release_version FROM system.local")
            return
        except NoHostAvailable as exc:
            last = exc
            time.sleep(1)
    raise RuntimeError(f"cassandra superuser login never worked: {last}\n{tail(log)}")
