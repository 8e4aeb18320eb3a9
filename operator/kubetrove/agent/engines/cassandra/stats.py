"""Row counts per table ("keyspace.table" keys), recorded in a backup's manifest for verification.

Counted with ``SELECT count(*)`` at consistency ALL through this node: on a ring every node's backup holds
only its own replicas, so only the ring-wide count means anything, and ALL makes it exact (and fails
loudly, leaving the manifest without counts, when a replica is down). A full scan per table: fine for the
data sets a verification restores, slow on big tables (the count runs beside the snapshot's tar, in the
runner's side thread, so it does not hold the snapshot up). No checksums: CQL has no cheap row digest.
https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/dml.html#aggregate-functions
"""

from __future__ import annotations

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import TableStats

COUNT_TIMEOUT_SECONDS = 600.0


def table_stats(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """Rows per table of the keyspaces ``databases``, counted at consistency ALL."""
    from cassandra import ConsistencyLevel
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
    from cassandra.query import SimpleStatement

    from kubetrove.agent.engines.cassandra.permissions import quote
    from kubetrove.agent.engines.cassandra.session import DEFAULT_PORT, PROTOCOL_VERSION
    from kubetrove.agent.engines.cassandra.tls import ssl_context

    profile = ExecutionProfile(
        load_balancing_policy=WhiteListRoundRobinPolicy([config.host]),
        consistency_level=ConsistencyLevel.ALL,
        request_timeout=COUNT_TIMEOUT_SECONDS,
    )
    cluster = Cluster(
        [config.host],
        port=config.port or DEFAULT_PORT,
        auth_provider=PlainTextAuthProvider(config.user, config.password),
        protocol_version=PROTOCOL_VERSION,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        ssl_context=ssl_context(config),  # spec.tls: the node may refuse plaintext CQL
    )
    stats: dict[str, TableStats] = {}
    try:
        session = cluster.connect()
        for keyspace in databases:
            tables = session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
            )
            for table in sorted(r.table_name for r in tables):
                count = SimpleStatement(f"SELECT count(*) FROM {quote(keyspace)}.{quote(table)}")
                stats[f"{keyspace}.{table}"] = TableStats(rows=int(session.execute(count).one()[0]))
    finally:
        cluster.shutdown()
    return stats
