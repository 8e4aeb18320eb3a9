"""PostgreSQL: the agent's whole knowledge of it (driver, rejoin, backups, statistics, identifiers).

Identifiers: 63 bytes (NAMEDATALEN - 1); longer names are silently truncated by the server, which would
make two different names collide, so they are refused
(https://www.postgresql.org/docs/15/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS).
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.postgresql import stats
from kubetrove.agent.engines.postgresql.backup import PostgreSQLMethods
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.postgresql.driver import PostgreSQLDriver  # psycopg: only where served

    return PostgreSQLDriver(config)


# The agent's own allow-list for PUT /v1/parameters, a second fence behind the operator's catalog
# (and its semi-sync role parameters): nothing else is ever set, whoever holds the token.
# tests/unit/agent/test_bundles.py keeps it equal to what the operator sends and free of
# parameters that run commands, load code or SQL (docs/security.md).
PARAMETERS = frozenset(
    {
        "autovacuum",
        "autovacuum_naptime",
        "checkpoint_completion_target",
        "checkpoint_timeout",
        "default_statistics_target",
        "effective_cache_size",
        "effective_io_concurrency",
        "huge_pages",
        "idle_in_transaction_session_timeout",
        "log_min_duration_statement",
        "log_statement",
        "maintenance_work_mem",
        "max_connections",
        "max_locks_per_transaction",
        "max_parallel_workers",
        "max_parallel_workers_per_gather",
        "max_wal_size",
        "max_worker_processes",
        "min_wal_size",
        "random_page_cost",
        "shared_buffers",
        "statement_timeout",
        "synchronous_commit",
        "synchronous_standby_names",
        "timezone",
        "wal_buffers",
        "work_mem",
    }
)


BUNDLE = EngineBundle(
    engine=Engine.POSTGRESQL,
    driver=_driver,
    methods=PostgreSQLMethods(),
    table_stats=stats.table_stats,
    names=Rule(
        Engine.POSTGRESQL,
        63,
        63,
        reserved_databases=frozenset({"postgres", "template0", "template1"}),
        reserved_users=frozenset({"postgres", "public"}),
        reserved_prefixes=("pg_",),  # roles: "role name ... is reserved" (datastores/postgresql/strategy.py)
    ),
    capabilities=Capabilities(consistency_check=True, elected_membership=False),
    parameters=PARAMETERS,
)
