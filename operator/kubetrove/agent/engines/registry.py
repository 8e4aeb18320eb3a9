"""The explicit registry: engine name -> driver factory. Adding an engine is adding one line here.

Factories import their module lazily, so the agent image for one engine does not need the client
libraries of the others (and ``import kubetrove.agent.engines.registry`` stays cheap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.config import EngineConfig

DriverFactory = Callable[[EngineConfig], EngineDriver]


def _mysql(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mysql import MySQLDriver

    return MySQLDriver(config)


def _mariadb(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mariadb import MariaDBDriver

    return MariaDBDriver(config)


def _postgresql(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.postgresql import PostgreSQLDriver

    return PostgreSQLDriver(config)


def _mongodb(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.mongodb import MongoDBDriver

    return MongoDBDriver(config)


def _cassandra(config: EngineConfig) -> EngineDriver:
    from kubetrove.agent.engines.cassandra import CassandraDriver

    return CassandraDriver(config)


REGISTRY: Mapping[str, DriverFactory] = {
    "mysql": _mysql,
    "mariadb": _mariadb,
    "postgresql": _postgresql,
    "mongodb": _mongodb,
    "cassandra": _cassandra,
}


def make_driver(engine: str, config: EngineConfig) -> EngineDriver:
    """Build the driver for ``engine``; ValueError names the known engines when it is not one."""
    try:
        factory = REGISTRY[engine]
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return factory(config)
