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
    ),
    capabilities=Capabilities(consistency_check=True, elected_membership=False),
)
