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
)
