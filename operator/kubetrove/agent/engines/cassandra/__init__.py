"""Cassandra: the agent's whole knowledge of it (driver, snapshot backups and their layout, identifiers).

Identifiers: keyspaces and roles ``[A-Za-z0-9_]{1,48}``, so no ``-``
(https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/ddl.html); every ``system*`` keyspace is
Cassandra's own. Table statistics: row counts at consistency ALL (stats.py), no checksums.
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle
from kubetrove.agent.engines.cassandra.backup import CassandraMethods
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine, TableStats


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.cassandra.driver import (
        CassandraDriver,
    )  # cassandra-driver: only where served

    return CassandraDriver(config)


def _table_stats(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    from kubetrove.agent.engines.cassandra.stats import table_stats  # cassandra-driver: only where served

    return table_stats(config, databases)


BUNDLE = EngineBundle(
    engine=Engine.CASSANDRA,
    driver=_driver,
    methods=CassandraMethods(),
    table_stats=_table_stats,
    names=Rule(
        Engine.CASSANDRA,
        48,
        48,
        allow_hyphen=False,
        reserved_databases=frozenset({"system"}),
        reserved_users=frozenset({"cassandra"}),
        reserved_prefixes=("system",),
    ),
    capabilities=Capabilities(consistency_check=False, elected_membership=False, ring=True),
)
