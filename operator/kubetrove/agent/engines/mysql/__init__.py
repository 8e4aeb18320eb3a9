"""MySQL 8.4: the agent's whole knowledge of it (driver, backups, statistics, identifiers, capabilities).

Identifiers: database names up to 64 characters, user names up to 32
(https://dev.mysql.com/doc/refman/8.4/en/identifier-length.html). ``_`` is a wildcard in GRANT; the
driver escapes it.
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mysql.backup import MySQLMethods
from kubetrove.agent.engines.mysql_family import stats
from kubetrove.agent.engines.mysql_family.names import SYSTEM_SCHEMAS
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mysql.driver import MySQLDriver  # pymysql: only in images that serve it

    return MySQLDriver(config)


BUNDLE = EngineBundle(
    engine=Engine.MYSQL,
    driver=_driver,
    methods=MySQLMethods(),
    table_stats=stats.table_stats,
    names=Rule(
        Engine.MYSQL, 64, 32, reserved_databases=SYSTEM_SCHEMAS, reserved_users=frozenset({"root", "mysql"})
    ),
    capabilities=Capabilities(consistency_check=True, elected_membership=False),
)
