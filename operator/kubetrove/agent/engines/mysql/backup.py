"""MySQL's backups: the clone plugin (physical), mysqldump (logical).

Physical: ``CLONE LOCAL DATA DIRECTORY`` (https://dev.mysql.com/doc/refman/8.4/en/clone-plugin-local.html)
writes a consistent copy of the whole instance, InnoDB only, into a directory the server creates; the
agent streams it out as one tar and removes it. Percona XtraBackup is not used: no build of it can be
obtained here (nor MySQL Enterprise Backup), so nothing would ever test it; the clone plugin ships with
every MySQL 8.0.17+ server and is loaded by the rendered config (``mysql_clone.so``).

- The directory is shared by the engine and the agent containers: an emptyDir both mount at the same
  path (``EngineContainer.clone_dir``, passed to the agent as ``--clone-dir``). mysqld writes it (as the
  pod's uid), the agent reads it; it must not exist before the statement (the server refuses).
- The copy needs the account's BACKUP_ADMIN (the agent's root has it) and blocks DDL while it runs, not
  DML. It is restored by placing the files in an empty data directory before mysqld starts (the restore
  init container); no prepare step: the server's own crash recovery at the first start makes it
  consistent, as after any clone. The clone has no ``auto.cnf``, so the restored server gets its own
  ``server_uuid``; it carries the source's GTID history in ``mysql.gtid_executed``.
- Position: the ``gtid_executed`` the agent read when the backup was asked for (the runner's fallback), a
  lower bound of the copy's when writes ran meanwhile. No exact one is to be had: a LOCAL clone leaves
  ``performance_schema.clone_status.GTID_EXECUTED`` empty (seen on 9.7.4). The restored server's own
  ``gtid_executed`` is exact (it is in the copied ``mysql.gtid_executed`` table).
Logical: https://dev.mysql.com/doc/refman/8.4/en/mysqldump.html (``--single-transaction``,
``--set-gtid-purged=ON``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mysql_family.backup import MySQLFamilyMethods
from kubetrove.agent.engines.plans import BackupPlan, MethodUnsupported, PhysicalRestore, Step
from kubetrove.agent.protocol import BackupMethod, Engine

CLONE_DIR_OPTION = "clone_dir"  # EngineConfig.options key: the agent's --clone-dir


def _sql_string(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MySQLMethods(MySQLFamilyMethods):
    """The clone plugin (physical), mysqldump (logical); both run against real 9.7.4 servers."""

    engine = Engine.MYSQL
    artifact: ClassVar[Mapping[BackupMethod, str]] = {
        BackupMethod.PHYSICAL: "backup.tar",
        BackupMethod.LOGICAL: "backup.sql",
    }
    physical_tool = "clone"
    extract_tool = "tar"
    dump_tool = "mysqldump"
    client_tool = "mysql"
    # https://dev.mysql.com/doc/refman/8.4/en/connection-options.html#option_general_ssl-mode
    tls_client_options = "ssl-mode=REQUIRED\n"
    dump_position_flags = ("--source-data=2", "--set-gtid-purged=ON")
    # mysqldump writes "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '<uuid:1-42,...>';" near the top.
    dump_position = re.compile(r"GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)'", re.S)

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        if method is not BackupMethod.PHYSICAL:
            return super().backup(method, config, work, databases, tag)
        base = config.options.get(CLONE_DIR_OPTION)
        if not base:
            raise MethodUnsupported("a physical MySQL backup needs the clone directory (--clone-dir)")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", tag):
            raise MethodUnsupported(f"backup id {tag!r} cannot name a clone directory")
        target = str(Path(base) / f"backup-{tag}")
        cnf = f"--defaults-file={work / 'client.cnf'}"
        clone = f"CLONE LOCAL DATA DIRECTORY = {_sql_string(target)}"
        return BackupPlan(
            self.physical_tool,
            (Step(("tar", "-C", target, "-cf", "-", "."), self.artifact[method]),),
            None,  # the runner records the gtid_executed read when the backup was asked for
            files={"client.cnf": self.defaults_file(config)},
            # A leftover of a run that died (the server refuses an existing directory), then the copy.
            before=(("rm", "-rf", target), (self.client_tool, cnf, "-e", clone)),
            after=(("rm", "-rf", target),),
        )

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        # No prepare: the server's crash recovery at its first start finishes the clone's copy.
        return PhysicalRestore(extract=(self.extract_tool, "-x", "-C", str(staging)))
