"""MySQL (Oracle's community server): 8.4 LTS and 9.7 LTS.

Differs from MariaDB in: GTID sets ``uuid:1-5`` (partially ordered: ``gtid.py``), replication with
``SOURCE_AUTO_POSITION=1`` (agent), physical backups with Percona XtraBackup (agent image), the image
(Oracle Linux based, ``mysqld``), and a few parameters (redo log capacity, log buffer, buffer pool
instances). Manual: https://dev.mysql.com/doc/refman/8.4/en/
"""

from __future__ import annotations

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import params
from kubetrove.datastores._mysql_common import Flavor, MySQLFamily
from kubetrove.datastores._mysql_common.catalog import COMMON, GiB, MiB
from kubetrove.datastores._mysql_common.strategy import SYSTEM_SCHEMAS
from kubetrove.datastores.base import Ordering, ParameterSpec, ParamType, ReservedNames, VersionInfo
from kubetrove.datastores.mysql import gtid

# Official images (docker-library "mysql"); patch tags pinned, bumped deliberately.
VERSIONS = {
    "8.4": VersionInfo("8.4", "mysql:8.4.8", major="8.4"),
    # 9.7 is the LTS after 8.4; an in-place upgrade from the previous LTS is supported.
    "9.7": VersionInfo("9.7", "mysql:9.7.0", major="9.7", upgrade_from=("8.4",)),
}

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
    reserved=ReservedNames(databases=SYSTEM_SCHEMAS, users=frozenset({"root", "mysql"})),
    scratch_dirs=(
        "/tmp",  # noqa: S108 (an emptyDir in the pod, not a shared /tmp)
        "/var/run/mysqld",
    ),
    compare=_compare,
)


class MySQL(MySQLFamily):
    """The MySQL strategy."""

    def __init__(self) -> None:
        super().__init__(FLAVOR)
