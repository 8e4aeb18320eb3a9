"""spec.tls on real Cassandra 5.0.9: a node and a ring started with the encryption options the product
renders (``datastores/cassandra``: PEMBasedSslContextFactory on the Secret's files) and the certificate
the operator issues (servers/tls.py).

A node under ``required``: a client verifying the CA and the Service name is served, a plaintext CQL
client is refused, the agent (as the pod runs it, ``--engine-tls-dir``) still reads the status, creates
a keyspace and a role, and takes a backup whose manifest holds the row counts (counted over TLS), and a
renewal swapped into the files is served by the same process after the agent's ``nodetool reloadssl``.
A ring under ``required``: it forms with internode encryption on, the storage port serves the
certificate only to a peer presenting one of the CA, and a QUORUM write is read at ALL.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver, table_stats
from kubetrove.agent.protocol import BackupMethod, BackupPhase, BackupRequest, Grant, Privilege
from kubetrove.api.common import Engine, TLSMode
from kubetrove.datastores.registry import REGISTRY
from tests.integration.conftest import StartAgent
from tests.integration.conftest_backup import CREATED_AT, backup
from tests.integration.servers import cassandra, cassandra_ring, tls
from tests.integration.servers.minio import MinioServer
from tests.integration.test_client_tls import renewed_without_restart


def rendered(files: tls.TLSFiles, mode: TLSMode = TLSMode.REQUIRED) -> str:
    """The product's TLS part of cassandra.yaml for ``files``, as YAML to append to a test config."""
    conf = yaml.safe_load(REGISTRY[Engine.CASSANDRA].render_config({}, tls=files.settings(mode)))
    keys = ("client_encryption_options", "server_encryption_options")
    return yaml.safe_dump({k: conf[k] for k in keys}, sort_keys=False)


def agent_context() -> ssl.SSLContext:
    """What the agent's sessions use (unverified TLS to its own node: agent/engines/cassandra/tls.py)."""
    from kubetrove.agent.engines.cassandra.tls import ssl_context

    context = ssl_context(EngineConfig(tls=True))
    assert context is not None
    return context


def verifying(ca_file: Path) -> ssl.SSLContext:
    """A client's context verifying the chain against ``ca_file`` and the name it is given."""
    context = ssl.create_default_context(cafile=str(ca_file))
    assert context.check_hostname and context.verify_mode is ssl.CERT_REQUIRED
    return context


def cql(port: int, context: ssl.SSLContext | None, name: str = tls.SERVICE, host: str = "127.0.0.1") -> str:
    """Log in as the superuser (TLS with ``context``, verifying ``name``; plaintext without) and return
    the node's release version, or raise NoHostAvailable."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]))
    cluster = Cluster(
        [host],
        port=port,
        auth_provider=PlainTextAuthProvider(*cassandra.SUPERUSER),
        protocol_version=5,
        connect_timeout=30,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        ssl_context=context,
        ssl_options={"server_hostname": name} if context is not None else None,
    )
    try:
        return str(cluster.connect().execute("SELECT release_version FROM system.local").one()[0])
    finally:
        cluster.shutdown()


@pytest.fixture(autouse=True)
def nodetool_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent calls ``nodetool`` from PATH; the jars have no launcher script, so write one."""
    script = cassandra.nodetool_wrapper(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")


@pytest.fixture(scope="module")
def node(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[cassandra.CassandraServer, tls.TLSFiles]]:
    """A node started with the rendered ``required`` options (its own: TLS is a server-wide setting)."""
    base = tmp_path_factory.mktemp("cass-tls")
    files = tls.make_files(base / "tls")
    server = cassandra.start(base / "node", extra=rendered(files), ssl_context=agent_context())
    print(f"\ncassandra with client TLS required up in {server.startup_seconds:.1f} s", file=sys.stderr)
    yield server, files
    server.stop()


def agent_config(server: cassandra.CassandraServer) -> EngineConfig:
    """The agent sidecar's settings under spec.tls (``--engine-tls-dir`` makes ``tls`` true)."""
    return EngineConfig(
        port=server.port,
        user=server.user,
        password=server.password,
        tls=True,
        options={"data_dir": str(server.workdir), "jmx_port": str(server.jmx_port)},
    )


def test_required_serves_verified_tls_and_refuses_plaintext_cql(
    node: tuple[cassandra.CassandraServer, tls.TLSFiles],
) -> None:
    from cassandra.cluster import NoHostAvailable

    server, files = node
    probe = tls.probe(server.port, "", files.ca_file)  # TLS from the first byte on the CQL port
    assert probe.verified, probe.output
    assert not tls.probe(server.port, "", files.ca_file, name="other-rw.ns.svc").verified
    # A driver verifying the CA and the Service's name (what a client in the cluster does).
    assert cql(server.port, verifying(files.ca_file)) == cassandra.VERSION
    with pytest.raises(NoHostAvailable):
        cql(server.port, verifying(files.ca_file), name="other-rw.ns.svc")
    with pytest.raises(NoHostAvailable):
        cql(server.port, None)  # plaintext CQL: refused


async def test_the_agent_works_over_tls_and_a_backup_counts_its_rows(
    node: tuple[cassandra.CassandraServer, tls.TLSFiles], start_agent: StartAgent, minio: MinioServer
) -> None:
    server, _ = node
    config = agent_config(server)
    driver = make_driver(Engine.CASSANDRA.value, config)
    try:
        assert driver.status().healthy
        driver.ensure_database("shop", 1)
        driver.ensure_user("app", "app-pw-1", [Grant(database="shop", privileges=[Privilege.READ_WRITE])])
    finally:
        getattr(driver, "close", lambda: None)()
    with server.session() as s:
        s.execute("CREATE TABLE shop.items (id int PRIMARY KEY, name text)")
        for i in range(25):
            s.execute("INSERT INTO shop.items (id, name) VALUES (%s, %s)", (i, f"item {i}"))
    assert table_stats(Engine.CASSANDRA.value, config, ["shop"])["shop.items"].rows == 25
    # A backup through the agent's API: nodetool (JMX) snapshots, the row counts over TLS.
    agent = await start_agent(Engine.CASSANDRA.value, config)
    target = minio.target(prefix="cass-tls")
    request = BackupRequest(id="tls1", method=BackupMethod.PHYSICAL, target=target, created_at=CREATED_AT)
    reply = await backup(agent.url, agent.token, request)
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    body = minio.client().get_object(Bucket=minio.bucket, Key="cass-tls/tls1/manifest.json")["Body"].read()
    assert json.loads(body)["tables"]["shop.items"]["rows"] == 25


async def test_a_renewed_certificate_is_served_by_the_same_process_after_the_agent_s_reloadssl(
    node: tuple[cassandra.CassandraServer, tls.TLSFiles],
) -> None:
    server, files = node
    await renewed_without_restart(Engine.CASSANDRA, agent_config(server), files, server.proc, server.port, "")


def test_a_ring_forms_with_internode_encryption_and_a_quorum_write_is_read_at_all(tmp_path: Path) -> None:
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    files = tls.make_files(tmp_path / "tls")
    ring = cassandra_ring.plan(tmp_path / "ring", first_address=40)
    for member in ring.nodes:
        member.ssl_context = agent_context()
    cassandra_ring.form(ring, [rendered(files)] * len(ring.nodes))
    try:
        print(f"\nTLS ring of {len(ring.nodes)} up in {ring.startup_seconds:.1f} s", file=sys.stderr)
        assert {s.state for s in ring.status().values()} == {"UN"} and len(ring.status()) == 3
        seed, peer = ring.nodes[0], ring.nodes[1]
        # The storage port speaks TLS with the product's certificate, and only to a peer presenting a
        # certificate of the CA (require_client_auth): a node of another CA, or none, is not a peer.
        member = ("-cert", str(files.directory / "tls.crt"), "-key", str(files.directory / "tls.key"))
        served = storage_probe(peer.address, ring.storage_port, files.ca_file, member)
        assert served.verified, served.output
        assert "Acceptable client certificate CA names\nCN = kubetrove test CA" in served.output
        # TLS 1.2: the server's refusal of a peer without a certificate ends the handshake itself (under
        # 1.3 it comes after the client's Finished, which s_client does not wait for).
        stranger = storage_probe(peer.address, ring.storage_port, files.ca_file, ("-tls1_2",))
        assert not stranger.verified and "alert" in stranger.output.lower(), stranger.output
        # Every internode link the seed made or took is TLS (Cassandra logs each one's encryption).
        links = [
            line
            for line in seed.system_log.read_text(errors="replace").splitlines()
            if "encryption = " in line
        ]
        assert links and all("encryption = encrypted(" in line for line in links), links
        with ring.session() as s:
            s.execute(
                "CREATE KEYSPACE kt_tls"
                " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
            )
            s.execute("CREATE TABLE kt_tls.t (id int PRIMARY KEY, v text)")
            write = SimpleStatement("INSERT INTO kt_tls.t (id, v) VALUES (1, 'over tls')")
            write.consistency_level = ConsistencyLevel.QUORUM
            s.execute(write)
            read = SimpleStatement(
                "SELECT v FROM kt_tls.t WHERE id = 1", consistency_level=ConsistencyLevel.ALL
            )
            assert s.execute(read).one().v == "over tls"
    finally:
        ring.stop()


def storage_probe(host: str, port: int, ca_file: Path, client: tuple[str, ...]) -> tls.Probe:
    """``openssl s_client`` to a storage port, presenting ``client`` (-cert/-key) or no certificate."""
    argv = [
        *("openssl", "s_client", "-connect", f"{host}:{port}", "-CAfile", str(ca_file)),
        *("-verify_hostname", tls.SERVICE, "-verify_return_error", *client),
    ]
    run = subprocess.run(argv, input=b"", capture_output=True, timeout=30, check=False)
    out = run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")
    return tls.Probe(run.returncode == 0 and "Verify return code: 0 (ok)" in out, b"", out)
