"""MySQL (Oracle's community server): 8.4 LTS and 9.7 LTS.

Differs from MariaDB in: GTID sets ``uuid:1-5`` (partially ordered: ``gtid.py``), replication with
``SOURCE_AUTO_POSITION=1`` (agent), physical backups with Percona XtraBackup (agent image), the image
(Oracle Linux based, ``mysqld``), and a few parameters (redo log capacity, log buffer, buffer pool
instances). Manual: https://dev.mysql.com/doc/refman/8.4/en/
"""

from __future__ import annotations

from collections.abc import Mapping

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import params
from kubetrove.datastores._mysql_common import Flavor, MySQLFamily
from kubetrove.datastores._mysql_common.catalog import COMMON, GiB, MiB
from kubetrove.datastores._mysql_common.strategy import SYSTEM_SCHEMAS
from kubetrove.datastores.base import NameRules, Ordering, ParameterSpec, ParamType, VersionInfo
from kubetrove.datastores.mysql import gtid

# Official images (docker-library "mysql"); patch tags pinned, bumped deliberately.
VERSIONS = {
    "8.4": VersionInfo("8.4", "mysql:8.4.8", major="8.4"),
    # 9.7 is the LTS after 8.4; an in-place upgrade from the previous LTS is supported.
    "9.7": VersionInfo("9.7", "mysql:9.7.0", major="9.7", upgrade_from=("8.4",)),
}

# Lossless semi-sync (docs/clustering.md), as for MariaDB: a commit returns to its client only after a
# replica wrote it to its relay log (AFTER_SYNC: before the primary's own engine commit), and the wait
# never times out into asynchronous replication (1 day, in ms). Both plugins are loaded on every member
# (any may be promoted); the replica half is on everywhere, the source half
# (rpl_semi_sync_source_enabled) is switched on by the clustering loop when it promotes (role_parameters).
# The plugin and variable names are the 8.0.26+ ones; 8.4 and 9.7 have no other.
# https://dev.mysql.com/doc/refman/8.4/en/replication-semisync-installation.html
SEMI_SYNC = (
    ("plugin_load_add", "semisync_source.so"),
    ("plugin_load_add", "semisync_replica.so"),
    ("rpl_semi_sync_replica_enabled", "ON"),
    ("rpl_semi_sync_source_wait_point", "AFTER_SYNC"),
    ("rpl_semi_sync_source_timeout", "86400000"),
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

    def __init__(self) -> None:
        super().__init__(FLAVOR)

    def role_parameters(self, primary: bool) -> Mapping[str, str]:
        """The primary half of lossless semi-sync: on only on the primary (docs/clustering.md)."""
        return {"rpl_semi_sync_source_enabled": "ON" if primary else "OFF"}
