"""MongoDB: the agent's whole knowledge of it (driver, replica-set membership, backups, identifiers).

Identifiers: database names under 64 bytes and none of ``/\\. "$*<>:|?`` (already outside the portable
set) (https://www.mongodb.com/docs/manual/reference/limits/#naming-restrictions). No table statistics:
MongoDB has no cheap exact count per collection.
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle, no_table_stats
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb.backup import MongoDBMethods
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mongodb.driver import MongoDBDriver  # pymongo: only where served

    return MongoDBDriver(config)


BUNDLE = EngineBundle(
    engine=Engine.MONGODB,
    driver=_driver,
    methods=MongoDBMethods(),
    table_stats=no_table_stats,
    names=Rule(Engine.MONGODB, 63, 63, reserved_databases=frozenset({"admin", "local", "config"})),
    capabilities=Capabilities(consistency_check=False, elected_membership=True),
)
