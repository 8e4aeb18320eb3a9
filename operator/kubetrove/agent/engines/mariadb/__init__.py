"""MariaDB 10.6+: the agent's whole knowledge of it (driver, backups, statistics, identifiers, capabilities).

Identifiers: database names up to 64 characters, user names up to 80
(https://mariadb.com/kb/en/identifier-names/). ``_`` is a wildcard in GRANT; the driver escapes it.
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mariadb.backup import MariaDBMethods
from kubetrove.agent.engines.mysql_family import stats
from kubetrove.agent.engines.mysql_family.names import SYSTEM_SCHEMAS
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mariadb.driver import MariaDBDriver  # pymysql: only in images that serve it

    return MariaDBDriver(config)


# The agent's own allow-list for PUT /v1/parameters, a second fence behind the operator's catalog
# (and its semi-sync role parameters): nothing else is ever set, whoever holds the token.
# tests/unit/agent/test_bundles.py keeps it equal to what the operator sends and free of
# parameters that run commands, load code or SQL (docs/security.md).
PARAMETERS = frozenset(
    {
        "aria_pagecache_buffer_size",
        "binlog_expire_logs_seconds",
        "character_set_server",
        "collation_server",
        "innodb_buffer_pool_size",
        "innodb_flush_log_at_trx_commit",
        "innodb_io_capacity",
        "innodb_lock_wait_timeout",
        "innodb_log_buffer_size",
        "innodb_log_file_size",
        "innodb_print_all_deadlocks",
        "interactive_timeout",
        "long_query_time",
        "max_allowed_packet",
        "max_connect_errors",
        "max_connections",
        "max_heap_table_size",
        "performance_schema",
        "rpl_semi_sync_master_enabled",
        "slave_parallel_threads",
        "slow_query_log",
        "sql_mode",
        "sync_binlog",
        "table_open_cache",
        "thread_cache_size",
        "thread_handling",
        "tmp_table_size",
        "transaction_isolation",
        "wait_timeout",
    }
)


BUNDLE = EngineBundle(
    engine=Engine.MARIADB,
    driver=_driver,
    methods=MariaDBMethods(),
    table_stats=stats.table_stats,
    names=Rule(
        Engine.MARIADB,
        64,
        80,
        reserved_databases=SYSTEM_SCHEMAS,
        reserved_users=frozenset({"root", "mysql", "mariadb"}),
    ),
    capabilities=Capabilities(consistency_check=True, elected_membership=False),
    parameters=PARAMETERS,
)
