"""Backup and restore commands as DATA: the shapes every engine bundle's ``backup.py`` fills in.

Each engine's commands are argv lists for the runner (no shell, no secret in argv); they live in
``engines/<engine>/backup.py``. Secrets reach the tools through files written 0600 into a private work dir
(``--defaults-file`` for the MySQL family, a ``--config`` YAML for the MongoDB tools) or through the
environment (``PGPASSWORD``), never through argv, which any process can read in /proc.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import BackupMethod, Engine

Argv = tuple[str, ...]
# Table checksums (engines/<engine>/stats.py) only up to this size: a full scan of a big table would slow
# every backup down; bigger tables get row counts only.
CHECKSUM_MAX_BYTES = 64 * 1024 * 1024


class MethodUnsupported(Exception):
    """The engine has no such method (e.g. Cassandra logical)."""


@dataclass(frozen=True)
class Step:
    """One tool run whose whole stdout becomes one artifact."""

    argv: Argv
    artifact: str
    database: str | None = None


@dataclass(frozen=True)
class BackupPlan:
    """Everything the runner needs to take one backup."""

    tool: str
    steps: tuple[Step, ...]
    position: re.Pattern[str] | None = (
        None  # group 1 is the position; searched in stderr, stdout head and tail
    )
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets for the tools
    files: Mapping[str, str] = field(
        default_factory=dict, repr=False
    )  # name -> content, 0600 in the work dir
    before: tuple[Argv, ...] = ()  # run first (not streamed), e.g. a Cassandra snapshot
    after: tuple[Argv, ...] = ()  # run last, also after a failure (cleanup)


@dataclass(frozen=True)
class PhysicalRestore:
    """Extract one artifact (on stdin) into the staging dir, then prepare it there."""

    extract: Argv
    prepare: tuple[Argv, ...] = ()
    mode: int | None = None  # chmod of the data dir after the move (PostgreSQL insists on 0700)
    # In-process, after ``prepare``, on the staging dir: rearrange files the tools cannot (Cassandra moves
    # snapshot SSTables into their table dirs). ValueError: the backup's layout is unusable (refused).
    relayout: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class LogicalRestore:
    """Load one verified, spooled artifact into the running engine."""

    argv: Argv
    stdin: Path | None = None  # the spooled artifact is fed on stdin, or named in argv
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    files: Mapping[str, str] = field(default_factory=dict, repr=False)


def port(config: EngineConfig, default: int) -> str:
    """The engine's port as a tool argument: the configured one, else the engine's ``default``."""
    return str(config.port or default)


class EngineMethods:
    """Backup/restore commands of one engine; subclasses fill the class attributes and builders."""

    engine: ClassVar[Engine]
    methods: ClassVar[frozenset[BackupMethod]]

    def major(self, version: str) -> str:
        """``major.minor`` (MySQL, MariaDB, MongoDB, Cassandra change on-disk formats there)."""
        match = re.match(r"(\d+)\.(\d+)", version)
        if match is None:
            raise ValueError(f"cannot read a {self.engine} version from {version!r}")
        return f"{match[1]}.{match[2]}"

    def check(self, method: BackupMethod) -> None:
        """Raise MethodUnsupported unless this engine has ``method``."""
        if method not in self.methods:
            have = ", ".join(sorted(self.methods))
            raise MethodUnsupported(f"{self.engine} has no {method} backup (it has: {have})")

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        """The plan for one backup; ``work`` is a private, empty directory."""
        raise NotImplementedError

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        """How to turn a physical artifact into a ready data dir under ``staging``."""
        raise MethodUnsupported(f"{self.engine} has no physical restore")

    def logical_restore(
        self, config: EngineConfig, work: Path, spooled: Path, database: str | None
    ) -> LogicalRestore:
        """How to load one logical artifact."""
        raise MethodUnsupported(f"{self.engine} has no logical restore")
