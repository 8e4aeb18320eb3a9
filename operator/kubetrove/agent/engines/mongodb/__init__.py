"""MongoDB: the agent's whole knowledge of it (driver, replica-set membership, backups, identifiers).

Identifiers: database names under 64 bytes and none of ``/\\. "$*<>:|?`` (already outside the portable
set) (https://www.mongodb.com/docs/manual/reference/limits/#naming-restrictions); ``__system`` is the
members' internal user (key-file authentication). Statistics: per-collection counts and ``dbHash``
digests (``stats.py``); consistency check: ``validate`` (the driver's ``check_tables``).
"""

from __future__ import annotations

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import Capabilities, EngineBundle
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb import stats
from kubetrove.agent.engines.mongodb.backup import MongoDBMethods
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine


def _driver(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mongodb.driver import MongoDBDriver  # pymongo: only where served

    return MongoDBDriver(config)


# The agent's own allow-list for PUT /v1/parameters, a second fence behind the operator's catalog
# (and its semi-sync role parameters): nothing else is ever set, whoever holds the token.
# tests/unit/agent/test_bundles.py keeps it equal to what the operator sends and free of
# parameters that run commands, load code or SQL (docs/security.md).
PARAMETERS = frozenset(
    {
        "net.maxIncomingConnections",
        "operationProfiling.mode",
        "operationProfiling.slowOpSampleRate",
        "operationProfiling.slowOpThresholdMs",
        "replication.oplogSizeMB",
        "setParameter.cursorTimeoutMillis",
        "setParameter.diagnosticDataCollectionEnabled",
        "setParameter.enableFlowControl",
        "setParameter.flowControlTargetLagSeconds",
        "setParameter.logLevel",
        "setParameter.maxIndexBuildMemoryUsageMegabytes",
        "setParameter.maxTransactionLockRequestTimeoutMillis",
        "setParameter.notablescan",
        "setParameter.transactionLifetimeLimitSeconds",
        "setParameter.ttlMonitorEnabled",
        "storage.wiredTiger.collectionConfig.blockCompressor",
        "storage.wiredTiger.engineConfig.cacheSizeGB",
        "storage.wiredTiger.engineConfig.journalCompressor",
    }
)


BUNDLE = EngineBundle(
    engine=Engine.MONGODB,
    driver=_driver,
    methods=MongoDBMethods(),
    table_stats=stats.table_stats,
    names=Rule(
        Engine.MONGODB,
        63,
        63,
        reserved_databases=frozenset({"admin", "local", "config"}),
        reserved_users=frozenset({"__system"}),
    ),
    capabilities=Capabilities(consistency_check=True, elected_membership=True),
    parameters=PARAMETERS,
)
