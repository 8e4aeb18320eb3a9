"""The MySQL-family strategy skeleton: one class, parameterised by a ``Flavor`` per engine."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import params
from kubetrove.datastores._mysql_common.catalog import SIZES
from kubetrove.datastores._mysql_common.config import LOG_SETTINGS, render_mycnf, tls_settings
from kubetrove.datastores.base import (
    ConfigFile,
    EngineContainer,
    HAMode,
    NameRules,
    Ordering,
    ParameterSpec,
    Port,
    ServerTLS,
    VersionInfo,
)

# The schemas both engines keep for themselves (https://dev.mysql.com/doc/refman/8.4/en/system-schema.html).
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
# Credentials Secret key holding the root password (the engine image reads it on first start only).
ROOT_PASSWORD_KEY = "root-password"  # noqa: S105 (a Secret key name)
# server_id = SERVER_ID_BASE + StatefulSet ordinal: unique within a cluster, never 0 (a server with
# server_id 0 refuses to replicate), and clear of the default 1 that an unconfigured server uses.
SERVER_ID_BASE = 100
CONFIG_FILE = ConfigFile(mount_dir="/etc/mysql/conf.d", file_name="kubetrove.cnf")
PORTS = (Port("mysql", 3306),)
DATA_DIR = "/var/lib/mysql"
# Created by the agent on fence/set_source, removed on promote (EngineContainer.demoted_marker). A plain
# file in the datadir: mariadbd treats only directories there as databases.
DEMOTED_MARKER = f"{DATA_DIR}/kubetrove-demoted"
# uid/gid of the "mysql" user in both official images: docker-library/mysql creates it with
# --uid 999 --gid 999; MariaDB/mariadb-docker with plain `useradd -r`, which on its Ubuntu base takes
# the first system id, 999.
MYSQL_UID = 999
# Connector URI options for verified TLS (the MySQL X DevAPI / Connector/J spelling, which drivers of
# both engines read): the server's name checked against its certificate, the CA from ``{ca}``.
# https://dev.mysql.com/doc/refman/8.4/en/connecting-using-uri-or-key-value-pairs.html
TLS_QUERY = "ssl-mode=VERIFY_IDENTITY&ssl-ca={ca}"


@dataclass(frozen=True)
class Flavor:
    """What differs between MySQL and MariaDB on the operator side."""

    engine: Engine
    versions: Mapping[str, VersionInfo]
    position_type: str
    server_binary: str  # what the image entrypoint starts: mysqld / mariadbd
    root_credential_env: str  # the image entrypoint's variable for the initial root password
    fixed_settings: Sequence[tuple[str, str]]  # always rendered, never user-settable
    parameters: Mapping[str, ParameterSpec]
    backup_methods: Sequence[BackupMethod]
    scratch_dirs: tuple[str, ...]  # writable emptyDirs (socket dir, tmpdir) with a read-only root fs
    compare: Callable[[str, str], Ordering]  # the flavour's GTID algebra
    name_rules: NameRules
    # Server flags for a member that restarts after it was demoted (``EngineContainer.demoted_marker``);
    # empty: the flavour starts the same way whatever its last role was.
    demoted_start_flags: tuple[str, ...] = ()
    # EngineContainer.clone_dir: where the engine clones itself for a physical backup the agent streams
    # out (MySQL's clone plugin); "" = none (MariaDB's mariadb-backup reads the data directory itself).
    clone_dir: str = ""
    # Rendered for cluster members only: they start fenced (render_config).
    fenced_settings: tuple[tuple[str, str], ...] = (("read_only", "ON"),)
    # The image entrypoint's settings (e.g. MariaDB's MARIADB_AUTO_UPGRADE: system tables upgraded when a
    # newer server starts on an older data dir, what an in-place version upgrade needs).
    server_env: Mapping[str, str] = field(default_factory=dict)


def server_id_command(
    server_binary: str, demoted_flags: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(command, args) that start the image entrypoint with ``--server-id`` derived from the pod ordinal.

    A StatefulSet pod's hostname is ``<statefulset>-<ordinal>``; ``${HOSTNAME##*-}`` is the ordinal.
    Without a numeric suffix the script exits 1 (the pod crash-loops visibly) rather than guess an id.
    With ``demoted_flags``, they are added while the agent's demoted marker exists (``DEMOTED_MARKER``).
    """
    steps = [
        'ordinal="${HOSTNAME##*-}"',
        'case "$ordinal" in ""|*[!0-9]*) '
        'echo "kubetrove: no StatefulSet ordinal in $HOSTNAME" >&2; exit 1;; esac',
    ]
    if demoted_flags:
        steps.append(f'if [ -e {DEMOTED_MARKER} ]; then set -- "$@" {" ".join(demoted_flags)}; fi')
    steps.append(f'exec docker-entrypoint.sh "$@" --server-id="$(({SERVER_ID_BASE} + ordinal))"')
    return ("sh", "-c", "; ".join(steps), "kubetrove-entrypoint"), (server_binary,)


class MySQLFamily:
    """Operator-side strategy for a MySQL-family engine; stateless, one instance per flavour."""

    ports: Sequence[Port] = PORTS
    ha_mode = HAMode.OPERATOR_PRIMARY
    config_file = CONFIG_FILE
    restore_first_member_only = False  # same data, same GTID position on every member (base.py)
    rejoin_rewinds = False  # extra GTIDs are errant transactions (base.py)
    rebuilds_errant = False  # MariaDB has no clone; MySQL overrides it (base.py)
    replicated_databases = False
    serves_tls = True

    def __init__(self, flavor: Flavor) -> None:
        self._flavor = flavor

    @property
    def engine(self) -> Engine:
        return self._flavor.engine

    @property
    def versions(self) -> Mapping[str, VersionInfo]:
        return self._flavor.versions

    @property
    def position_type(self) -> str:
        return self._flavor.position_type

    @property
    def name_rules(self) -> NameRules:
        return self._flavor.name_rules

    @property
    def parameters(self) -> Mapping[str, ParameterSpec]:
        return self._flavor.parameters

    @property
    def backup_methods(self) -> Sequence[BackupMethod]:
        return self._flavor.backup_methods

    def container(self, version: str, tls: ServerTLS | None = None) -> EngineContainer:
        """The official image's entrypoint, our conf.d file, and ``--server-id`` from the pod ordinal."""
        flags = self._flavor.demoted_start_flags
        command, args = server_id_command(self._flavor.server_binary, flags)
        return EngineContainer(
            data_dir=DATA_DIR,
            run_as_user=MYSQL_UID,
            run_as_group=MYSQL_UID,
            command=command,
            args=args,
            env=dict(self._flavor.server_env),
            secret_env={self._flavor.root_credential_env: ROOT_PASSWORD_KEY},
            admin_user="root",  # the agent logs in as root over the pod's loopback
            admin_password_key=ROOT_PASSWORD_KEY,
            read_only_root_filesystem=True,
            scratch_dirs=self._flavor.scratch_dirs,
            demoted_marker=DEMOTED_MARKER if flags else "",
            clone_dir=self._flavor.clone_dir,
        )

    def render_config(
        self, parameters: Mapping[str, str], clustered: bool = False, tls: ServerTLS | None = None
    ) -> str:
        """``kubetrove.cnf`` for /etc/mysql/conf.d (both images' my.cnf include that directory).

        Cluster members start fenced (``read_only = ON``; MySQL also ``super_read_only``): a primary whose
        server restarted before the failover detection fired comes back fenced, and the clustering loop
        promotes it again (unfence plus the primary's role parameters, e.g. semi-sync's primary half,
        which a restart turned off).
        Without it such a primary would take writes without semi-sync (docs/clustering.md).
        ``tls``: the server's certificate files, and plaintext TCP refused when required.
        """
        fenced = self._flavor.fenced_settings if clustered else ()
        fixed = (*self._flavor.fixed_settings, *LOG_SETTINGS, *fenced, *tls_settings(tls))
        return render_mycnf(str(self.engine), fixed, parameters)

    def validate_parameters(self, parameters: Mapping[str, str]) -> list[str]:
        """One message per unknown name or bad value."""
        return params.validate(self.engine, self.parameters, parameters, SIZES)

    def validate_topology(self, replicas: int) -> list[str]:
        """One primary plus 1 to 14 replicas: the primary waits for a replica's acknowledgement."""
        if 2 <= replicas <= 15:
            return []
        return [
            f"replicas={replicas} for {self.engine}: expected between 2 and 15 (one primary and its"
            " replicas; the primary waits for one replica to acknowledge each commit, so a single"
            " server is a DatabaseInstance)"
        ]

    def compare_positions(self, a: str, b: str) -> Ordering:
        """Compare GTID positions with the flavour's algebra (may answer INCOMPARABLE)."""
        return self._flavor.compare(a, b)

    def semi_sync_ack_count(self, replicas: int) -> int:
        """MariaDB semi-sync waits for exactly one replica; MySQL's wait count is left at its default, 1."""
        return 1

    def role_parameters(self, primary: bool) -> Mapping[str, str]:
        """None by default (a flavour with a primary-only semi-sync switch overrides it)."""
        return {}
