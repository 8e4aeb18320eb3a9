"""MongoDB's backups: physical (the member's data files under ``fsyncLock``) and logical (mongodump).

- physical: ``filecopy.py`` locks the member, streams its data directory as a tar and unlocks
  (https://www.mongodb.com/docs/manual/core/backups/#back-up-by-copying-underlying-data-files); the
  position is the member's applied optime under the lock. Restore extracts the tar into the data
  directory before mongod starts. This is the method that runs on a real mongod here.
- logical: ``mongodump --archive`` / ``mongorestore --archive``
  (https://www.mongodb.com/docs/database-tools/mongodump/). The database tools are a separate Go project
  that cannot be obtained on the test ground, so only these command lines are tested (unit), never a run.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb.filecopy import POSITION_PREFIX
from kubetrove.agent.engines.plans import (
    Argv,
    BackupPlan,
    EngineMethods,
    LogicalRestore,
    PhysicalRestore,
    Step,
    port,
)
from kubetrove.agent.protocol import BackupMethod, Engine

FILECOPY = "kubetrove.agent.engines.mongodb.filecopy"
PHYSICAL_ARTIFACT = "backup.tar"


class MongoDBMethods(EngineMethods):
    """Physical (data files under fsyncLock) and logical (mongodump --archive)."""

    engine = Engine.MONGODB
    methods = frozenset({BackupMethod.PHYSICAL, BackupMethod.LOGICAL})

    @staticmethod
    def _conn(config: EngineConfig, work: Path) -> tuple[Argv, dict[str, str]]:
        uri = f"mongodb://{config.host}:{port(config, 27017)}/?authSource=admin"
        argv: Argv = (f"--uri={uri}",)
        if config.tls:  # spec.tls: over TLS, unverified (the pod's own loopback, as the driver's)
            argv = (*argv, "--ssl", "--tlsInsecure")
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
        if method is BackupMethod.PHYSICAL:
            conn = {"host": config.host, "port": port(config, 27017), "user": config.user, "tls": config.tls}
            files = {"conn.json": json.dumps({**conn, "password": config.password})}
            helper = (sys.executable, "-m", FILECOPY)
            return BackupPlan(
                "fsyncLock+tar",
                (Step((*helper, "stream", str(work / "conn.json")), PHYSICAL_ARTIFACT),),
                position=re.compile(rf"{POSITION_PREFIX} (\d+:\d+)"),
                files=files,
                after=((*helper, "unlock", str(work / "conn.json")),),  # if the stream died locked
            )
        conn_argv, tool_files = self._conn(config, work)
        return BackupPlan(
            "mongodump", (Step(("mongodump", *conn_argv, "--archive"), "backup.archive"),), files=tool_files
        )

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        # The data files as they were under the lock: mongod opens them as after a clean shutdown.
        return PhysicalRestore(extract=("tar", "-x", "-C", str(staging)))

    def logical_restore(
        self, config: EngineConfig, work: Path, spooled: Path, database: str | None
    ) -> LogicalRestore:
        conn, files = self._conn(config, work)
        return LogicalRestore(("mongorestore", *conn, f"--archive={spooled}"), files=files)
