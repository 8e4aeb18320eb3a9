"""Cassandra's backups: snapshots.

https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/backups.html
"""

from __future__ import annotations

from pathlib import Path

from kubetrove.agent.engines.cassandra import layout
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import (
    Argv,
    BackupPlan,
    EngineMethods,
    MethodUnsupported,
    PhysicalRestore,
    Step,
)
from kubetrove.agent.protocol import BackupMethod, Engine


class CassandraMethods(EngineMethods):
    """nodetool snapshot, then one tar of every snapshot directory, then clearsnapshot (always).

    The data dir comes from ``EngineConfig.options["data_dir"]`` (the agent's ``--data-dir``, the volume:
    the tar then holds ``data/<keyspace>/<table>-<id>/snapshots/<tag>/*``); the snapshot tag is the backup
    id. ``nodetool snapshot`` without keyspace arguments snapshots EVERY keyspace, system ones included
    (checked on 5.0): the restore needs ``system_schema`` for the table ids. The restore extracts the tar
    into the new node's empty volume and ``layout.relayout`` moves the SSTables into their table
    directories and drops the node-local ``system`` keyspace, before Cassandra starts. Only a one-node
    instance's backup is a whole data set (see layout.py); tested against a real 5.0 node in
    tests/integration/test_backup_cassandra.py. The agent needs ``nodetool`` (a JVM) on PATH.
    """

    engine = Engine.CASSANDRA
    methods = frozenset({BackupMethod.PHYSICAL})

    @staticmethod
    def _nodetool(config: EngineConfig, *args: str) -> Argv:
        return ("nodetool", "-h", config.host, "-p", config.options.get("jmx_port", "7199"), *args)

    def backup(
        self, method: BackupMethod, config: EngineConfig, work: Path, databases: list[str], tag: str
    ) -> BackupPlan:
        self.check(method)
        data_dir = config.options.get("data_dir")
        if not data_dir:
            raise MethodUnsupported("cassandra backups need options['data_dir'] (the node's data directory)")
        # A fixed script with positional arguments: no value is ever interpolated into shell code.
        script = 'cd "$1" && find . -path "*/snapshots/$2/*" -type f -print0 | tar --null -c -f - -T -'
        step = Step(("sh", "-c", script, "sh", data_dir, tag), "sstables.tar")
        return BackupPlan(
            "nodetool snapshot",
            (step,),
            before=(self._nodetool(config, "snapshot", "-t", tag),),
            after=(self._nodetool(config, "clearsnapshot", "-t", tag),),
        )

    def physical_restore(self, staging: Path) -> PhysicalRestore:
        return PhysicalRestore(extract=("tar", "-x", "-f", "-", "-C", str(staging)), relayout=layout.relayout)
