"""Cassandra: the agent's whole knowledge of it (driver, snapshot backups and their layout, identifiers).

Identifiers: keyspaces and roles ``[A-Za-z0-9_]{1,48}``, so no ``-``
(https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/ddl.html); every ``system*`` keyspace is
Cassandra's own. Table statistics: row counts at consistency ALL (stats.py), no checksums; the consistency
check is ``nodetool verify --force`` (driver.check_tables).
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


# The agent's own allow-list for PUT /v1/parameters, a second fence behind the operator's catalog
# (and its semi-sync role parameters): nothing else is ever set, whoever holds the token.
# tests/unit/agent/test_bundles.py keeps it equal to what the operator sends and free of
# parameters that run commands, load code or SQL (docs/security.md).
PARAMETERS = frozenset(
    {
        "auto_snapshot",
        "batch_size_fail_threshold",
        "batch_size_warn_threshold",
        "commitlog_segment_size",
        "compaction_throughput",
        "concurrent_compactors",
        "concurrent_counter_writes",
        "concurrent_reads",
        "concurrent_writes",
        "hinted_handoff_enabled",
        "key_cache_size",
        "max_hint_window",
        "memtable_allocation_type",
        "memtable_heap_space",
        "memtable_offheap_space",
        "range_request_timeout",
        "read_request_timeout",
        "request_timeout",
        "ring_delay",  # a JVM property read at start (never PUT: not dynamic), listed as the catalog is
        "slow_query_log_timeout",
        "stream_throughput_outbound",
        "tombstone_failure_threshold",
        "tombstone_warn_threshold",
        "write_request_timeout",
    }
)


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
    capabilities=Capabilities(consistency_check=True, elected_membership=False, ring=True),
    parameters=PARAMETERS,
)
