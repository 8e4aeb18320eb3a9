"""Per-engine backup and restore commands as DATA: argv lists for the runner (no shell, no secret in argv).

Secrets reach the tools through files written 0600 into a private work dir (``--defaults-file`` for the
MySQL family, a ``--config`` YAML for the MongoDB tools) or through the environment (``PGPASSWORD``), never
through argv, which any process can read in /proc.

Manuals:
- MariaDB: https://mariadb.com/kb/en/mariabackup-options/ (``--stream=xbstream``, ``--prepare``),
  https://mariadb.com/kb/en/mariadb-dump/ (``--single-transaction``, ``--master-data=2 --gtid``).
- MySQL: https://docs.percona.com/percona-xtrabackup/8.0/ , https://dev.mysql.com/doc/refman/8.4/en/mysqldump.html
- PostgreSQL: https://www.postgresql.org/docs/15/app-pgbasebackup.html (``-D - -Ft -X fetch``: one tar on
  stdout holding the data and the WAL needed to reach consistency), .../app-pgdump.html (``-Fc``),
  .../app-pgverifybackup.html.
- MongoDB: https://www.mongodb.com/docs/database-tools/mongodump/ (``--archive``).
- Cassandra: https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/backups.html (snapshots).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from kubetrove.agent.backup import cassandra_layout
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import BackupMethod

Argv = tuple[str, ...]


class MethodUnsupported(Exception):
    """The engine has no such method (e.g. MongoDB physical)."""


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


def _quoted(value: str) -> str:
    """A double-quoted option-file value (``#`` would otherwise start a comment)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _port(config: EngineConfig, default: int) -> str:
    return str(config.port or default)


class EngineMethods:
    """Backup/restore commands of one engine; subclasses fill the class attributes and builders."""

    engine: ClassVar[str]
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


class _MySQLFamily(EngineMethods):
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
    # Printed by mariabackup and xtrabackup when the copy is consistent.
    physical_position = re.compile(r"GTID of the last change '([^']*)'", re.S)

    @staticmethod
    def defaults_file(config: EngineConfig) -> str:
        """A [client] option file: the password stays out of argv."""
        return (
            "[client]\n"
            f"host={config.host}\nport={_port(config, 3306)}\nuser={_quoted(config.user)}\n"
            f"password={_quoted(config.password)}\n"
        )

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


class MariaDBMethods(_MySQLFamily):
    """mariadb-backup (physical), mariadb-dump (logical)."""

    engine = "mariadb"
    physical_tool = "mariadb-backup"
    extract_tool = "mbstream"
    dump_tool = "mariadb-dump"
    client_tool = "mariadb"
    dump_position_flags = ("--master-data=2", "--gtid")
    # --master-data=2 --gtid ends the dump with a commented "SET GLOBAL gtid_slave_pos='0-1-42';".
    dump_position = re.compile(r"gtid_slave_pos='([^']*)'")


class MySQLMethods(_MySQLFamily):
    """xtrabackup (physical, in the MySQL image), mysqldump (logical). Unit-tested only: no MySQL here."""

    engine = "mysql"
    physical_tool = "xtrabackup"
    extract_tool = "xbstream"
    dump_tool = "mysqldump"
    client_tool = "mysql"
    dump_position_flags = ("--source-data=2", "--set-gtid-purged=ON")
    # mysqldump writes "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '<uuid:1-42,...>';" near the top.
    dump_position = re.compile(r"GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)'", re.S)


class PostgreSQLMethods(EngineMethods):
    """pg_basebackup (physical: one tar with WAL), pg_dump -Fc per database (logical)."""

    engine = "postgresql"
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
        return ("-h", config.host, "-p", _port(config, 5432), "-U", config.user, "--no-password")

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


class MongoDBMethods(EngineMethods):
    """mongodump --archive (logical only: a physical copy needs a stopped engine or a volume snapshot)."""

    engine = "mongodb"
    methods = frozenset({BackupMethod.LOGICAL})

    @staticmethod
    def _conn(config: EngineConfig, work: Path) -> tuple[Argv, dict[str, str]]:
        uri = f"mongodb://{config.host}:{_port(config, 27017)}/?authSource=admin"
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


class CassandraMethods(EngineMethods):
    """nodetool snapshot, then one tar of every snapshot directory, then clearsnapshot (always).

    The data dir comes from ``EngineConfig.options["data_dir"]`` (the agent's ``--data-dir``, the volume:
    the tar then holds ``data/<keyspace>/<table>-<id>/snapshots/<tag>/*``); the snapshot tag is the backup
    id. ``nodetool snapshot`` without keyspace arguments snapshots EVERY keyspace, system ones included
    (checked on 5.0): the restore needs ``system_schema`` for the table ids. The restore extracts the tar
    into the new node's empty volume and ``cassandra_layout.relayout`` moves the SSTables into their table
    directories and drops the node-local ``system`` keyspace, before Cassandra starts. Only a one-node
    instance's backup is a whole data set (see cassandra_layout); tested against a real 5.0 node in
    tests/integration/test_backup_cassandra.py. The agent needs ``nodetool`` (a JVM) on PATH.
    """

    engine = "cassandra"
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
        return PhysicalRestore(
            extract=("tar", "-x", "-f", "-", "-C", str(staging)), relayout=cassandra_layout.relayout
        )


METHODS: Mapping[str, EngineMethods] = {
    m.engine: m
    for m in (MariaDBMethods(), MySQLMethods(), PostgreSQLMethods(), MongoDBMethods(), CassandraMethods())
}


def methods_for(engine: str) -> EngineMethods:
    """The commands of ``engine``; MethodUnsupported if it has none."""
    try:
        return METHODS[engine]
    except KeyError:
        raise MethodUnsupported(f"no backup methods for engine {engine!r}") from None
