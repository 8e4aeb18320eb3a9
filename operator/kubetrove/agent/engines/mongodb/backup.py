"""MongoDB's backups: mongodump --archive, logical only.

https://www.mongodb.com/docs/database-tools/mongodump/ (``--archive``).
"""

from __future__ import annotations

import json
from pathlib import Path

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import Argv, BackupPlan, EngineMethods, LogicalRestore, Step, port
from kubetrove.agent.protocol import BackupMethod, Engine


class MongoDBMethods(EngineMethods):
    """mongodump --archive (logical only: a physical copy needs a stopped engine or a volume snapshot)."""

    engine = Engine.MONGODB
    methods = frozenset({BackupMethod.LOGICAL})

    @staticmethod
    def _conn(config: EngineConfig, work: Path) -> tuple[Argv, dict[str, str]]:
        uri = f"mongodb://{config.host}:{port(config, 27017)}/?authSource=admin"
        argv: Argv = (f"--uri={uri}",)
        files: dict[str, str] = {}
        if config.user:
            # The tools' --config YAML is the one place a password may come from other than argv.
            files["tools.yaml"] = f"password: {json.dumps(config.password)}\n"  # JSON is YAML
            argv = (f"--config={work / 'tools.yaml'}", *argv, f"--username={config.user}")
        return argv, files

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        self.check(method)
        conn, files = self._conn(config, work)
        return BackupPlan(
            "mongodump", (Step(("mongodump", *conn, "--archive"), "backup.archive"),), files=files
        )

    def logical_restore(
        self, config: EngineConfig, work: Path, spooled: Path, database: str | None
    ) -> LogicalRestore:
        conn, files = self._conn(config, work)
        return LogicalRestore(("mongorestore", *conn, f"--archive={spooled}"), files=files)
