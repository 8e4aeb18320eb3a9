"""PostgreSQL's backups: pg_basebackup (physical), pg_dump -Fc per database (logical).

https://www.postgresql.org/docs/15/app-pgbasebackup.html (``-D - -Ft -X fetch``: one tar on stdout holding
the data and the WAL needed to reach consistency), .../app-pgdump.html (``-Fc``), .../app-pgverifybackup.html.
"""

from __future__ import annotations

import re
from pathlib import Path

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import (
    Argv,
    BackupPlan,
    EngineMethods,
    LogicalRestore,
    MethodUnsupported,
    PhysicalRestore,
    Step,
    port,
)
from kubetrove.agent.protocol import BackupMethod, Engine


class PostgreSQLMethods(EngineMethods):
    """pg_basebackup (physical: one tar with WAL), pg_dump -Fc per database (logical)."""

    engine = Engine.POSTGRESQL
    methods = frozenset({BackupMethod.PHYSICAL, BackupMethod.LOGICAL})
    # pg_basebackup -v: "write-ahead log end point: 0/2000138": the backup is consistent from there.
    end_lsn = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)")

    def major(self, version: str) -> str:
        """PostgreSQL 10+ numbers majors with one number ("15.4" is major 15)."""
        match = re.match(r"(\d+)", version)
        if match is None:
            raise ValueError(f"cannot read a postgresql version from {version!r}")
        return match[1]

    @staticmethod
    def _conn(config: EngineConfig) -> Argv:
        return ("-h", config.host, "-p", port(config, 5432), "-U", config.user, "--no-password")

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        self.check(method)
        env = {"PGPASSWORD": config.password}
        if method is BackupMethod.PHYSICAL:
            # -X fetch: WAL is collected at the end into the same tar (-X stream cannot write to stdout).
            argv = ("pg_basebackup", *self._conn(config), "-D", "-", "-Ft", "-X", "fetch", "-v")
            argv += ("--checkpoint=fast", f"--label={tag}")
            return BackupPlan("pg_basebackup", (Step(argv, "base.tar"),), self.end_lsn, env=env)
        if not databases:
            raise MethodUnsupported("no user database to dump")
        steps = tuple(
            Step(("pg_dump", *self._conn(config), "-Fc", "-d", db), f"{db}.pgdump", database=db)
            for db in databases
        )
        return BackupPlan("pg_dump", steps, None, env=env)

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        return PhysicalRestore(
            extract=("tar", "-x", "-f", "-", "-C", str(staging)),
            # backup_manifest travels inside the tar: check every file against it (WAL parsing skipped:
            # the server replays it at start-up and fails loudly if it is bad).
            prepare=(("pg_verifybackup", "--no-parse-wal", str(staging)),),
            mode=0o700,
        )

    def logical_restore(
        self, config: EngineConfig, work: Path, spooled: Path, database: str | None
    ) -> LogicalRestore:
        # --create: the dump recreates its database; --exit-on-error: a half-loaded database is an error.
        # --no-owner --no-privileges: the source's roles (the owners and grantees in the dump) do not exist
        # in a new instance before the load (its spec users are created once it is Ready), so the objects
        # belong to the restoring admin and the Users phase grants the new instance's users afterwards.
        argv = (
            "pg_restore",
            *self._conn(config),
            "--create",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "-d",
            "postgres",
            str(spooled),
        )
        return LogicalRestore(argv, env={"PGPASSWORD": config.password})
