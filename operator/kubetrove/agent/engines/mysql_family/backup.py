"""The backup and restore commands MySQL and MariaDB share: the same shapes, different tools and positions.

Manuals: https://mariadb.com/kb/en/mariabackup-options/ (``--stream=xbstream``, ``--prepare``),
https://mariadb.com/kb/en/mariadb-dump/, https://docs.percona.com/percona-xtrabackup/8.0/ ,
https://dev.mysql.com/doc/refman/8.4/en/mysqldump.html.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

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
from kubetrove.agent.protocol import BackupMethod


def quoted(value: str) -> str:
    """A double-quoted option-file value (``#`` would otherwise start a comment)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MySQLFamilyMethods(EngineMethods):
    """MySQL and MariaDB: the same shapes, different tool names and position syntax."""

    methods = frozenset({BackupMethod.PHYSICAL, BackupMethod.LOGICAL})
    artifact: ClassVar[Mapping[BackupMethod, str]] = {
        BackupMethod.PHYSICAL: "backup.xbstream",
        BackupMethod.LOGICAL: "backup.sql",
    }
    physical_tool: ClassVar[str]
    extract_tool: ClassVar[str]
    dump_tool: ClassVar[str]
    client_tool: ClassVar[str]
    dump_position_flags: ClassVar[Argv]
    dump_position: ClassVar[re.Pattern[str]]
    # [client] options that make the flavour's tools connect over TLS, unverified (the pod's own loopback:
    # mysql_family.driver's docstring), for a server that serves TLS and may refuse plaintext TCP.
    tls_client_options: ClassVar[str]
    # Printed by mariabackup and xtrabackup when the copy is consistent.
    physical_position = re.compile(r"GTID of the last change '([^']*)'", re.S)

    @classmethod
    def defaults_file(cls, config: EngineConfig) -> str:
        """A [client] option file: the password stays out of argv."""
        return (
            "[client]\n"
            f"host={config.host}\nport={port(config, 3306)}\nuser={quoted(config.user)}\n"
            f"password={quoted(config.password)}\n"
        ) + (cls.tls_client_options if config.tls else "")

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        self.check(method)
        cnf = f"--defaults-file={work / 'client.cnf'}"  # must be the FIRST option of these tools
        files = {"client.cnf": self.defaults_file(config)}
        if method is BackupMethod.PHYSICAL:
            # --target-dir only holds the tool's small metadata files while streaming.
            physical: Argv = (
                self.physical_tool,
                cnf,
                "--backup",
                "--stream=xbstream",
                f"--target-dir={work / 'xb'}",
            )
            step = Step(physical, self.artifact[method])
            return BackupPlan(self.physical_tool, (step,), self.physical_position, files=files)
        if not databases:
            raise MethodUnsupported("no user database to dump")
        argv = (
            self.dump_tool,
            cnf,
            "--single-transaction",  # a consistent InnoDB snapshot without locking writers
            *self.dump_position_flags,
            "--routines",
            "--events",
            "--triggers",
            "--hex-blob",
            "--databases",
            *databases,
        )
        return BackupPlan(
            self.dump_tool, (Step(argv, self.artifact[method]),), self.dump_position, files=files
        )

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        return PhysicalRestore(
            extract=(self.extract_tool, "-x", "-C", str(staging)),
            # --prepare applies the copied redo log: without it the files are not consistent.
            prepare=((self.physical_tool, "--prepare", f"--target-dir={staging}"),),
        )

    def logical_restore(
        self, config: EngineConfig, work: Path, spooled: Path, database: str | None
    ) -> LogicalRestore:
        argv = (self.client_tool, f"--defaults-file={work / 'client.cnf'}", "--binary-mode")
        return LogicalRestore(argv, stdin=spooled, files={"client.cnf": self.defaults_file(config)})
