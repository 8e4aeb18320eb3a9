"""The one registry of engine bundles, keyed by ``protocol.Engine``. Adding an engine is one line here.

Importing a bundle is cheap: its driver factory imports the engine's client library only when called, so
the agent image of one engine does not need the libraries of the others. The registry is checked at
import (so at the agent's start-up, and in the unit tests): every ``protocol.Engine`` has exactly one
complete bundle (``EngineBundle`` checks each one whole), or the import fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from kubetrove.agent.engines import cassandra, mariadb, mongodb, mysql, postgresql
from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.bundle import EngineBundle, IncompleteBundle
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import EngineMethods, MethodUnsupported
from kubetrove.agent.protocol import Engine, TableStats


def build_registry(bundles: Iterable[EngineBundle]) -> Mapping[Engine, EngineBundle]:
    """Key ``bundles`` by engine; IncompleteBundle unless every Engine has exactly one complete bundle."""
    registry: dict[Engine, EngineBundle] = {}
    for bundle in bundles:
        if not isinstance(bundle, EngineBundle):
            raise IncompleteBundle(f"{bundle!r} is not an EngineBundle")
        if bundle.engine in registry:
            raise IncompleteBundle(f"two bundles for engine {bundle.engine}")
        registry[bundle.engine] = bundle
    if missing := sorted(set(Engine) - set(registry)):
        raise IncompleteBundle(f"no bundle for engine(s) {', '.join(missing)}")
    return MappingProxyType(registry)


REGISTRY = build_registry(
    [mysql.BUNDLE, mariadb.BUNDLE, postgresql.BUNDLE, mongodb.BUNDLE, cassandra.BUNDLE],
)


def bundle_for(engine: str) -> EngineBundle:
    """The bundle of ``engine``; ValueError names the known engines when it is not one."""
    try:
        return REGISTRY[Engine(engine)]
    except ValueError:
        raise ValueError(f"unknown engine {engine!r}; known: {', '.join(sorted(REGISTRY))}") from None


def make_driver(engine: str, config: EngineConfig) -> EngineDriver:
    """Build the driver for ``engine`` (connects to nothing yet); ValueError for an unknown engine."""
    return bundle_for(engine).driver(config)


def methods_for(engine: str) -> EngineMethods:
    """The backup and restore commands of ``engine``; MethodUnsupported for an unknown engine."""
    try:
        return bundle_for(engine).methods
    except ValueError as exc:
        raise MethodUnsupported(f"no backup methods for engine {engine!r}") from exc


def table_stats(engine: str, config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """Per-table stats of ``databases`` ("db.table", or "db.schema.table" for PostgreSQL)."""
    return bundle_for(engine).table_stats(config, databases)
