"""Cassandra: the agent's whole knowledge of it (driver, snapshot backups and their layout, identifiers).

Identifiers: keyspaces and roles ``[A-Za-z0-9_]{1,48}``, so no ``-``
(https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/ddl.html); every ``system*`` keyspace is
Cassandra's own. No table statistics: Cassandra has no cheap exact count.
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle, no_table_stats
from kubetrove.agent.engines.cassandra.backup import CassandraMethods
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.cassandra.driver import (
        CassandraDriver,
    )  # cassandra-driver: only where served

    return CassandraDriver(config)


BUNDLE = EngineBundle(
    engine=Engine.CASSANDRA,
    driver=_driver,
    methods=CassandraMethods(),
    table_stats=no_table_stats,
    names=Rule(
        Engine.CASSANDRA,
        48,
        48,
        allow_hyphen=False,
        reserved_databases=frozenset({"system"}),
        reserved_users=frozenset({"cassandra"}),
        reserved_prefixes=("system",),
    ),
    capabilities=Capabilities(consistency_check=False, elected_membership=False),
)
