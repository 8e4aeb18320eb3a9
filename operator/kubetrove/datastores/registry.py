"""The engine registry: an explicit dict from ``Engine`` to its strategy (no discovery, no class paths).

Adding an engine is adding a subpackage here and one line below; the completeness test fails until
every ``Engine`` member has an entry whose ``engine`` is that member.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kubetrove.api.common import Engine
from kubetrove.datastores.base import Datastore
from kubetrove.datastores.cassandra import Cassandra
from kubetrove.datastores.mariadb import MariaDB
from kubetrove.datastores.mongodb import MongoDB
from kubetrove.datastores.mysql import MySQL
from kubetrove.datastores.postgresql import PostgreSQL

REGISTRY: Mapping[Engine, Datastore] = MappingProxyType(
    {
        Engine.MYSQL: MySQL(),
        Engine.MARIADB: MariaDB(),
        Engine.POSTGRESQL: PostgreSQL(),
        Engine.MONGODB: MongoDB(),
        Engine.CASSANDRA: Cassandra(),
    }
)


def get(engine: Engine | str) -> Datastore:
    """The strategy of ``engine``; ValueError for a name that is not an Engine."""
    return REGISTRY[Engine(engine)]
