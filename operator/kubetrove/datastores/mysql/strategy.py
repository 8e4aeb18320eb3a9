"""MySQL (Oracle's community server): 9.7 LTS.

Differs from MariaDB in: GTID sets ``uuid:1-5`` (partially ordered: ``gtid.py``), replication with
``SOURCE_AUTO_POSITION=1`` (agent), physical backups and rebuilds with the clone plugin (agent), lossless
semi-sync, the image (Debian sid's ``mysqld``, hack/images/recipes.py) and its agent image (9.7's client
tools), and a few parameters (redo log capacity, log buffer, buffer pool instances).
Manual: https://dev.mysql.com/doc/refman/8.4/en/
"""

from __future__ import annotations

from collections.abc import Mapping

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import params
from kubetrove.datastores._mysql_common import Flavor, MySQLFamily
from kubetrove.datastores._mysql_common.catalog import COMMON, GiB, MiB
from kubetrove.datastores._mysql_common.strategy import SYSTEM_SCHEMAS, TLS_QUERY
from kubetrove.datastores.base import ClientInfo, NameRules, Ordering, ParameterSpec, ParamType, VersionInfo
from kubetrove.datastores.mysql import gtid

# What ships is what is tested: 9.7 LTS only, the one MySQL that runs here (Debian sid's build, in the
# images hack/images builds: mysql:9.7.4 and its agent with 9.7's own client tools). 8.4 LTS has no
# build reachable from this project's machines, so it is not offered. Patch tags pinned, bumped
# deliberately.
VERSIONS = {
    "9.7": VersionInfo("9.7", "mysql:9.7.4", major="9.7", agent_image="agent-mysql:0.1.0"),
}

# Lossless semi-sync (docs/clustering.md), as for MariaDB: a commit returns to its client only after a
# replica wrote it to its relay log (AFTER_SYNC: before the primary's own engine commit), and the wait
# never times out into asynchronous replication (1 day, in ms). Both plugins are loaded on every member
# (any may be promoted); the replica half is on everywhere, the source half
# (rpl_semi_sync_source_enabled) is switched on by the clustering loop when it promotes (role_parameters).
# The plugin and variable names are the 8.0.26+ ones; 8.4 and 9.7 have no other.
# The plugins' variables carry the option-file prefix ``loose_``: a variable a plugin defines is unknown
# until the plugin is loaded, and ``mysqld --initialize`` (the image's first start) and
# ``mysqld --verbose --help`` (its entrypoint reads the datadir with it) abort on an unknown option; with
# ``loose_`` they warn and go on, and the running server, which loads the plugins first, applies them.
# https://dev.mysql.com/doc/refman/8.4/en/replication-semisync-installation.html
# https://dev.mysql.com/doc/refman/8.4/en/option-modifiers.html
SEMI_SYNC = (
    ("plugin_load_add", "semisync_source.so"),
    ("plugin_load_add", "semisync_replica.so"),
    ("loose_rpl_semi_sync_replica_enabled", "ON"),
    ("loose_rpl_semi_sync_source_wait_point", "AFTER_SYNC"),
    ("loose_rpl_semi_sync_source_timeout", "86400000"),
)

# Always on: GTID replication with auto-positioning needs gtid_mode + enforce_gtid_consistency and a
# binary log on every member (a replica may become the primary). binlog_format is left out on
# purpose: ROW is MySQL's default and the variable is deprecated since 8.0.34.
FIXED = (
    ("skip_name_resolve", "ON"),
    ("gtid_mode", "ON"),
    ("enforce_gtid_consistency", "ON"),
    ("log_bin", "binlog"),
    ("log_replica_updates", "ON"),
    ("relay_log", "relay-bin"),
    # The X Protocol listener (33060) is not part of the API we expose.
    ("mysqlx", "OFF"),
    *SEMI_SYNC,
    # The clone plugin: the agent provisions an empty member by cloning its source (agent/engines/mysql/
    # clone.py): replaying the binary log would skip what the member's server_id once wrote.
    ("plugin_load_add", "mysql_clone.so"),
)

OWN = (
    ParameterSpec(
        "innodb_redo_log_capacity",
        ParamType.SIZE,
        True,
        8 * MiB,
        128 * GiB,
        description="total redo log size",
    ),
    ParameterSpec(
        "innodb_log_buffer_size", ParamType.SIZE, True, 1 * MiB, 4 * GiB, description="redo log buffer"
    ),
    ParameterSpec(
        "innodb_buffer_pool_instances", ParamType.INT, False, 1, 64, description="buffer pool partitions"
    ),
    ParameterSpec(
        "replica_parallel_workers", ParamType.INT, True, 0, 1024, description="applier threads on replicas"
    ),
    ParameterSpec(
        "log_error_verbosity", ParamType.ENUM, True, allowed=("1", "2", "3"), description="error log detail"
    ),
)


def _compare(a: str, b: str) -> Ordering:
    return gtid.compare(gtid.GtidSet.parse(a), gtid.GtidSet.parse(b))


FLAVOR = Flavor(
    engine=Engine.MYSQL,
    versions=VERSIONS,
    position_type="mysql-gtid-set",
    server_binary="mysqld",
    root_credential_env="MYSQL_ROOT_PASSWORD",
    fixed_settings=FIXED,
    parameters=params.merged(COMMON, OWN),
    backup_methods=(BackupMethod.PHYSICAL, BackupMethod.LOGICAL),
    scratch_dirs=(
        "/tmp",  # noqa: S108 (an emptyDir in the pod, not a shared /tmp)
        "/var/run/mysqld",
    ),
    compare=_compare,
    # Physical backups: CLONE LOCAL DATA DIRECTORY into this emptyDir, streamed out by the agent
    # (agent/engines/mysql/backup.py). Not under the data directory: the server would see a schema there.
    clone_dir="/var/lib/mysql-clone",
    # User names up to 32 characters (https://dev.mysql.com/doc/refman/8.4/en/user-names.html); root is the
    # agent's and the replication account; mysql.sys, mysql.session and mysql.infoschema are the server's
    # own (https://dev.mysql.com/doc/refman/8.4/en/reserved-accounts.html).
    name_rules=NameRules(64, 32, SYSTEM_SCHEMAS, frozenset({"root", "mysql"}), reserved_prefixes=("mysql.",)),
    # super_read_only also stops accounts with SUPER / CONNECTION_ADMIN (the agent's root included), so
    # nothing, not even a mistaken admin session, writes on a member the loop has not promoted.
    fenced_settings=(("read_only", "ON"), ("super_read_only", "ON")),
)


class MySQL(MySQLFamily):
    """The MySQL strategy."""

    # https://dev.mysql.com/doc/refman/9.4/en/connecting-using-uri-or-key-value-pairs.html ; the mysql
    # client reads MYSQL_PWD (deprecated but still honoured, and never visible in ps).
    client = ClientInfo(
        "mysql",
        "mysql",
        ("-h", "{host}", "-P", "{port}", "-u", "{user}", "{database}"),
        "MYSQL_PWD",
        tls_query=TLS_QUERY,
        tls_args=("--ssl-mode=VERIFY_CA", "--ssl-ca={ca}"),
    )

    # An errant member is re-provisioned from the primary by the clone plugin (agent/engines/mysql/clone.py,
    # docs/clustering.md I7).
    rebuilds_errant = True

    def __init__(self) -> None:
        super().__init__(FLAVOR)

    def role_parameters(self, primary: bool) -> Mapping[str, str]:
        """The primary half of lossless semi-sync: on only on the primary (docs/clustering.md)."""
        return {"rpl_semi_sync_source_enabled": "ON" if primary else "OFF"}
