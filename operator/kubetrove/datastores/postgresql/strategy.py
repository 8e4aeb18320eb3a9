"""PostgreSQL 15, 17 and 18, streaming replication with the operator choosing the primary.

Layout: the data volume is mounted at /var/lib/postgresql and PGDATA is ``<major>/docker`` below it
(the layout the postgres:18 image introduced, used for every version): the volume root's lost+found
never sits in PGDATA, and a future pg_upgrade has old and new data directories on one volume.
The server reads our file through ``-c config_file=...``, and our ``hba_file``, which the engine
container's start script writes (``start.py``: the image's pg_hba.conf has no ``replication`` line).
That script also clones an empty member from the primary and rejoins a demoted one with pg_rewind
(docs/clustering.md, "PostgreSQL").
Manual: https://www.postgresql.org/docs/current/
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import params
from kubetrove.datastores.base import (
    ClientInfo,
    ConfigFile,
    EngineContainer,
    HAMode,
    NameRules,
    Ordering,
    ParameterSpec,
    ParamType,
    Port,
    ServerTLS,
    VersionInfo,
)
from kubetrove.datastores.postgresql import start
from kubetrove.datastores.postgresql.catalog import PARAMETERS, SIZES, UNITS

# Credentials Secret key of the superuser ("postgres") password, read by the image on first start.
SUPERUSER_PASSWORD_KEY = "superuser-password"  # noqa: S105 (a Secret key name)
DATA_DIR = "/var/lib/postgresql"
ADMIN = "postgres"  # the image's superuser: the agent's account, and the one standbys clone and stream as
SOCKET_DIR = "/var/run/postgresql"
# uid/gid of "postgres" in the official Debian-based image (docker-library/postgres).
POSTGRES_UID = 999

# A major version change needs pg_upgrade or dump/restore: no in-place upgrade path between entries.
# The versions the project builds and runs (hack/images: Debian bookworm's 15, trixie's 17, sid's 18;
# each tag is the package's upstream version, checked by the build). Each names its agent image, built
# from the same root filesystem: pg_basebackup refuses a server newer than itself, pg_verifybackup reads
# only its own major's manifests.
VERSIONS = {
    "15": VersionInfo("15", "postgres:15.20", major="15", agent_image="agent-postgresql-15:0.1.0"),
    "17": VersionInfo("17", "postgres:17.12", major="17", agent_image="agent-postgresql-17:0.1.0"),
    "18": VersionInfo("18", "postgres:18.6", major="18", agent_image="agent-postgresql-18:0.1.0"),
}

CONFIG_FILE = ConfigFile(mount_dir="/etc/postgresql/kubetrove", file_name="postgresql.conf")

# The server log, written by the logging collector as CSV files the agent reads (GET /v1/logs/*; its
# republisher copies the records to the agent container's stdout, so ``kubectl logs`` still shows them:
# the driver says ``error_log_in_container_log = False``).
# https://www.postgresql.org/docs/current/runtime-config-logging.html
# - On the data volume but outside PGDATA (``LOG_DIR``): pg_basebackup and pg_rewind copy PGDATA, so
#   logs inside it would reach backups and a rewound member would get the primary's files.
# - The bound: 24 hourly files (``postgresql-HH.csv``), each emptied when its hour comes round again
#   (``log_truncate_on_rotation``, time-based rotations only), so the directory holds at most the last
#   24 hours of records. No size rotation: with a name that repeats, a size rotation reopens the SAME file
#   in append mode (syslogger.c, logfile_rotate_dest), so ``log_rotation_size`` would cap nothing. The
#   volume must hold a day of the log: a few MB a day at the defaults (errors, checkpoints, connections
#   refused), more with ``log_statement`` or a low ``log_min_duration_statement`` (docs/operations.md,
#   "Engine logs", has the figures).
# - ``log_timezone = 'UTC'``: the agent reads ``log_time`` as UTC (``agent/engines/postgresql/logs.py``).
# Only what starts before the collector (a bad setting, shared memory refused) and the collector's own
# complaints (a full volume: "could not write to log file") still go to the container's stderr.
LOG_DIR = f"{DATA_DIR}/log"
LOG_SETTINGS: tuple[tuple[str, str], ...] = (
    ("logging_collector", "on"),
    ("log_destination", "'csvlog'"),
    ("log_directory", f"'{LOG_DIR}'"),
    ("log_filename", "'postgresql-%H.log'"),  # the CSV file is postgresql-HH.csv
    ("log_rotation_age", "60"),
    ("log_rotation_size", "0"),
    ("log_truncate_on_rotation", "on"),
    ("log_timezone", "'UTC'"),
)

# Always set: streaming replication (wal_level, senders, slots), readable standbys, pg_rewind of a
# failed primary (wal_log_hints), the server log as above, and listening
# on the pod IP. In this file, not on the command line: pg_rewind's own crash recovery of a killed
# ex-primary runs ``postgres --single`` with the file alone (``--config-file``).
FIXED: tuple[tuple[str, str], ...] = (
    ("listen_addresses", "'*'"),
    ("port", "5432"),
    ("unix_socket_directories", f"'{SOCKET_DIR}'"),
    ("hba_file", f"'{start.HBA_FILE}'"),
    ("password_encryption", "'scram-sha-256'"),
    ("wal_level", "replica"),
    ("max_wal_senders", "10"),
    ("max_replication_slots", "10"),
    ("hot_standby", "on"),
    ("wal_log_hints", "on"),
    # pg_rewind reads the ex-primary's own WAL back to the checkpoint before the fork; its shutdown
    # checkpoint would otherwise recycle it (found on real servers). Also lets a lagging standby
    # catch up without a slot. Storage must leave room for it (CloudNativePG's default too).
    ("wal_keep_size", "'512MB'"),
    *LOG_SETTINGS,
)

HEADER = "# Generated by kubetrove from spec.parameters; the operator rewrites this file. Do not edit."


def _value(spec: ParameterSpec, value: str) -> str:
    # Numbers and booleans bare; everything else single-quoted (values never contain quotes).
    if spec.type in (ParamType.INT, ParamType.FLOAT, ParamType.BOOL):
        return value
    return f"'{value}'"


class PostgreSQL:
    """The PostgreSQL strategy."""

    engine = Engine.POSTGRESQL
    versions: Mapping[str, VersionInfo] = VERSIONS
    ports: Sequence[Port] = (Port("postgresql", 5432),)
    ha_mode = HAMode.OPERATOR_PRIMARY
    # Identifiers up to 63 bytes (NAMEDATALEN - 1): https://www.postgresql.org/docs/15/sql-syntax-lexical.html
    # Role names starting with pg_ are the server's ("role name ... is reserved", 42939:
    # https://www.postgresql.org/docs/15/sql-createrole.html); refused for databases too, one rule for both.
    name_rules = NameRules(
        63,
        63,
        frozenset({"postgres", "template0", "template1"}),
        frozenset({"postgres", "public"}),
        reserved_prefixes=("pg_",),
    )
    position_type = "postgresql-lsn"
    restore_first_member_only = True  # standbys clone from the restored primary (start.py, base.py)
    rejoin_rewinds = True  # an ex-primary's unacknowledged WAL tail is rewound away (base.py)
    rebuilds_errant = False  # nothing errant is kept (pg_rewind); an empty member clones itself
    replicated_databases = False
    parameters: Mapping[str, ParameterSpec] = PARAMETERS
    config_file = CONFIG_FILE
    # https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS ; psql reads
    # PGPASSWORD (libpq-envars).
    client = ClientInfo(
        "postgresql",
        "psql",
        ("-h", "{host}", "-p", "{port}", "-U", "{user}", "-d", "{database}"),
        "PGPASSWORD",
        default_database="postgres",
        tls_query="sslmode=verify-full&sslrootcert={ca}",
        tls_env={"PGSSLMODE": "verify-ca", "PGSSLROOTCERT": "{ca}"},
    )
    serves_tls = True
    backup_methods: Sequence[BackupMethod] = (BackupMethod.PHYSICAL, BackupMethod.LOGICAL)

    def container(self, version: str, tls: ServerTLS | None = None) -> EngineContainer:
        """Our start script (clone, rejoin, supervise) around the image entrypoint running ``postgres``;
        with TLS required its pg_hba.conf refuses plaintext TCP (``start.HBA_LINES_TLS_REQUIRED``)."""
        major = self.versions[version].major
        config = f"{CONFIG_FILE.mount_dir}/{CONFIG_FILE.file_name}"
        return EngineContainer(
            data_dir=DATA_DIR,
            run_as_user=POSTGRES_UID,
            run_as_group=POSTGRES_UID,
            command=(
                "sh",
                "-c",
                start.script(
                    config, self.ports[0].number, ADMIN, tls_required=tls is not None and tls.required
                ),
                "kubetrove-postgres",
            ),
            args=("docker-entrypoint.sh", "postgres", "-c", f"config_file={config}"),
            env={"PGDATA": f"{DATA_DIR}/{major}/docker"},
            secret_env={"POSTGRES_PASSWORD": SUPERUSER_PASSWORD_KEY},
            admin_user=ADMIN,
            admin_password_key=SUPERUSER_PASSWORD_KEY,
            demoted_marker=start.REJOIN_FILE,
            # The logging collector writes the server log to files on the volume (LOG_SETTINGS); the agent
            # reads and republishes it (its driver's error_log_in_container_log is False).
            error_log_container="agent",
            read_only_root_filesystem=True,
            scratch_dirs=(
                "/tmp",  # noqa: S108 (an emptyDir in the pod, not a shared /tmp)
                SOCKET_DIR,
            ),
        )

    def render_config(
        self, parameters: Mapping[str, str], clustered: bool = False, tls: ServerTLS | None = None
    ) -> str:
        """postgresql.conf: fixed settings, then TLS, then the (validated) parameters by name."""
        lines = [HEADER, "# kubetrove fixed settings for postgresql (replication, networking)"]
        lines += [f"{name} = {value}" for name, value in FIXED]
        if tls is not None:
            # The files are re-read on every reload (SIGHUP, pg_reload_conf()): a renewed certificate is
            # served without a restart. Whether plaintext is refused is pg_hba.conf's (container()).
            # https://www.postgresql.org/docs/current/ssl-tcp.html
            lines += [
                f"# spec.tls.mode {tls.mode.value}",
                "ssl = on",
                f"ssl_cert_file = '{tls.cert}'",
                f"ssl_key_file = '{tls.key}'",
                "ssl_min_protocol_version = 'TLSv1.2'",
            ]
        if parameters:
            lines.append("# spec.parameters")
            lines += [f"{n} = {_value(self.parameters[n], parameters[n])}" for n in sorted(parameters)]
        return "\n".join(lines) + "\n"

    def validate_parameters(self, parameters: Mapping[str, str]) -> list[str]:
        """One message per unknown name or bad value."""
        return params.validate(self.engine, self.parameters, parameters, SIZES, UNITS)

    def validate_topology(self, replicas: int) -> list[str]:
        """One primary plus 1 to 14 standbys: the primary waits for a synchronous standby's flush."""
        if 2 <= replicas <= 15:
            return []
        return [
            f"replicas={replicas} for postgresql: expected between 2 and 15 (one primary and its"
            " standbys; the primary waits for one standby to flush each commit, so a single server"
            " is a DatabaseInstance)"
        ]

    def compare_positions(self, a: str, b: str) -> Ordering:
        """LSNs are totally ordered: never INCOMPARABLE."""
        from kubetrove.datastores.postgresql import lsn

        return lsn.compare(lsn.Lsn.parse(a), lsn.Lsn.parse(b))

    def semi_sync_ack_count(self, replicas: int) -> int:
        """``synchronous_standby_names = 'ANY 1 (*)'``: one standby flushes each commit."""
        return 1

    def role_parameters(self, primary: bool) -> Mapping[str, str]:
        """Synchronous replication on the primary only: a commit waits until one standby flushed it.

        ``ANY 1 (*)``: any one standby acknowledges (``semi_sync_ack_count``), so the standby that
        received the most holds every acknowledged commit (decide's I2). Not in the file: a server
        with it and no standby blocks every commit (a DatabaseInstance, a fresh primary). As with
        MariaDB's semi-sync, a one-member DatabaseCluster therefore blocks writes.
        """
        return {"synchronous_standby_names": "ANY 1 (*)" if primary else ""}
