"""``EngineBundle``: everything the agent knows of one engine, in one typed object.

Each ``engines/<engine>/__init__.py`` declares one ``BUNDLE``; ``engines/registry.py`` lists them, keyed by
``protocol.Engine``. Nothing outside ``agent/engines/`` names an engine: it asks the registry for the
bundle of ``--engine`` and uses its parts. A bundle is checked whole when it is built (at import, so at the
agent's start-up and in the unit tests): a missing or mistyped part raises ``IncompleteBundle`` there, never
later in a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

from kubetrove.agent.engines.base import (
    EngineDriver,
    MembershipDriver,
    RebuildDriver,
    RingDriver,
    TableChecker,
)
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import EngineMethods
from kubetrove.agent.names import Rule
from kubetrove.agent.protocol import Engine, TableStats

# Builds the driver; imports the engine's client library only when called (an agent image carries only
# its own engine's library, and importing the registry must not need the others).
DriverFactory = Callable[[EngineConfig], EngineDriver]


class StatsCollector(Protocol):
    """Per-table row counts and checksums of ``databases``, recorded in a backup's manifest."""

    def __call__(self, config: EngineConfig, databases: list[str]) -> dict[str, TableStats]: ...


def no_table_stats(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """The collector of an engine without a cheap exact row count (declared, never a silent fallback)."""
    return {}


class IncompleteBundle(TypeError):
    """A bundle misses a part or has one of the wrong type; the message names the engine and the part."""


@dataclass(frozen=True)
class Capabilities:
    """What an engine's driver can do beyond ``EngineDriver``; the routes ask here, not the driver's type.

    ``consistency_check``: the driver is a ``TableChecker`` (``POST /v1/verify`` runs its check).
    ``elected_membership``: the driver is a ``MembershipDriver`` (the engine elects its primary; the
    operator manages the set's members, ``PUT /v1/replication/members``).
    ``ring``: the driver is a ``RingDriver`` (a ring of equals whose auth keyspace follows the ring's
    size, ``PUT /v1/ring/replication``).
    ``rebuild``: the driver is a ``RebuildDriver`` (it re-provisions its member from a donor,
    ``POST /v1/replication/rebuild``).
    A unit test holds every driver class to its bundle's flags.
    """

    consistency_check: bool
    elected_membership: bool
    ring: bool = False
    rebuild: bool = False


# The type of each part of a bundle; None: any callable (the factories and collectors are functions).
_PART_TYPES: dict[str, type | None] = {
    "engine": Engine,
    "driver": None,
    "methods": EngineMethods,
    "table_stats": None,
    "names": Rule,
    "capabilities": Capabilities,
    "parameters": frozenset,
}


@dataclass(frozen=True)
class EngineBundle:
    """One engine's driver, backup/restore commands, table statistics, identifier rule and capabilities."""

    engine: Engine
    driver: DriverFactory
    methods: EngineMethods
    table_stats: StatsCollector
    names: Rule
    capabilities: Capabilities
    # The only names PUT /v1/parameters may set (its own allow-list, not the operator's catalog alone:
    # a stolen token must not set init_connect on MariaDB or archive_command, an OS command, on PostgreSQL).
    parameters: frozenset[str]

    def allows_parameter(self, name: str) -> bool:
        """Whether ``name`` is on the allow-list (SQL engines' variables are case-insensitive)."""
        return name in self.parameters or name.lower() in self.parameters

    def __post_init__(self) -> None:
        """Refuse an incomplete bundle: every part present, of its type, and about this engine."""
        if not isinstance(self.engine, Engine):
            raise IncompleteBundle(f"bundle engine {self.engine!r} is not a protocol.Engine")
        for part in fields(self):
            value, kind = getattr(self, part.name), _PART_TYPES[part.name]  # a new part needs its type
            if value is None or not (callable(value) if kind is None else isinstance(value, kind)):
                raise IncompleteBundle(f"{self.engine} bundle: {part.name} is missing or of the wrong type")
        for what, named in (("methods", getattr(self.methods, "engine", None)), ("names", self.names.engine)):
            if named != self.engine:
                raise IncompleteBundle(f"{self.engine} bundle: its {what} are for engine {named!r}")
        if not getattr(self.methods, "methods", None):
            raise IncompleteBundle(f"{self.engine} bundle: methods declare no backup method")

    def table_checker(self, driver: EngineDriver) -> TableChecker | None:
        """``driver`` as a TableChecker if this engine has a consistency check, else None."""
        if not self.capabilities.consistency_check:
            return None
        if not isinstance(driver, TableChecker):
            raise IncompleteBundle(f"{self.engine} declares a consistency check its driver does not have")
        return driver

    def ring(self, driver: EngineDriver) -> RingDriver | None:
        """``driver`` as a RingDriver if this engine is a ring of equals, else None."""
        if not self.capabilities.ring:
            return None
        if not isinstance(driver, RingDriver):
            raise IncompleteBundle(f"{self.engine} declares a ring its driver cannot manage")
        return driver

    def rebuilder(self, driver: EngineDriver) -> RebuildDriver | None:
        """``driver`` as a RebuildDriver if this engine can re-provision a member from a donor, else None."""
        if not self.capabilities.rebuild:
            return None
        if not isinstance(driver, RebuildDriver):
            raise IncompleteBundle(f"{self.engine} declares a rebuild its driver cannot do")
        return driver

    def membership(self, driver: EngineDriver) -> MembershipDriver | None:
        """``driver`` as a MembershipDriver if this engine elects its primary, else None."""
        if not self.capabilities.elected_membership:
            return None
        if not isinstance(driver, MembershipDriver):
            raise IncompleteBundle(f"{self.engine} declares an elected set its driver cannot manage")
        return driver
