"""MariaDB: 10.11 and 11.8 (long-term series).

Differs from MySQL in: GTID positions ``domain-server-seq`` compared per domain (``gtid.py``),
replication with ``MASTER_USE_GTID=slave_pos`` (agent), physical backups with mariadb-backup (shipped in
the image), the image (Ubuntu based, ``mariadbd``, ``MARIADB_*`` variables), and some parameters.
Manual: https://mariadb.com/kb/en/server-system-variables/
"""

from __future__ import annotations

from collections.abc import Mapping

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import params
from kubetrove.datastores._mysql_common import Flavor, MySQLFamily
from kubetrove.datastores._mysql_common.catalog import COMMON, GiB, KiB, MiB
from kubetrove.datastores._mysql_common.strategy import SYSTEM_SCHEMAS, TLS_QUERY
from kubetrove.datastores.base import ClientInfo, NameRules, Ordering, ParameterSpec, ParamType, VersionInfo
from kubetrove.datastores.mariadb import gtid

# The versions the project builds and runs (hack/images: Debian bookworm's 10.11, trixie's 11.8; each
# tag is the package's upstream version, checked by the build). MariaDB supports in-place upgrades from
# an older long-term series to a newer one (the image runs mariadb-upgrade: MARIADB_AUTO_UPGRADE). Each
# version names its agent image, built from the same root filesystem: mariadb-backup must be the
# server's own release.
VERSIONS = {
    "10.11": VersionInfo("10.11", "mariadb:10.11.19", major="10.11", agent_image="agent-mariadb-10.11:0.1.0"),
    "11.8": VersionInfo(
        "11.8",
        "mariadb:11.8.9",
        major="11.8",
        upgrade_from=("10.11",),
        agent_image="agent-mariadb-11.8:0.1.0",
    ),
}

# Always on: a binary log on every member (any replica may be promoted), row events, replicas log what
# they apply, and gtid_strict_mode so an out-of-order GTID stops replication instead of diverging.
FIXED = (
    ("skip_name_resolve", "ON"),
    ("log_bin", "binlog"),
    ("binlog_format", "ROW"),
    ("log_slave_updates", "ON"),
    ("relay_log", "relay-bin"),
    ("gtid_strict_mode", "ON"),
    # Lossless semi-sync (docs/clustering.md): a commit returns to its client only after a replica wrote
    # it to its relay log (AFTER_SYNC: before the primary's own engine commit, so nobody reads a write a
    # failover could lose). The timeout (ms, 1 day) is far above any failover: semi-sync must never fall
    # back to asynchronous replication silently, which would let a failover drop acknowledged writes.
    # Writes block instead while no replica acknowledges. The primary side (rpl_semi_sync_master_enabled)
    # is switched on by the clustering loop when it promotes (a server starting with it on and no replica
    # blocks every commit, a one-member cluster's forever). The replica side is on everywhere.
    ("rpl_semi_sync_slave_enabled", "ON"),
    ("rpl_semi_sync_master_wait_point", "AFTER_SYNC"),
    ("rpl_semi_sync_master_timeout", "86400000"),
)

OWN = (
    # Dynamic since 10.9 (resized online), unlike MySQL where innodb_redo_log_capacity replaces it.
    ParameterSpec(
        "innodb_log_file_size", ParamType.SIZE, True, 1 * MiB, 512 * GiB, description="redo log size"
    ),
    ParameterSpec(
        "innodb_log_buffer_size", ParamType.SIZE, False, 256 * KiB, 4 * GiB, description="redo log buffer"
    ),
    ParameterSpec(
        "slave_parallel_threads", ParamType.INT, True, 0, 16383, description="applier threads on replicas"
    ),
    ParameterSpec(
        "thread_handling",
        ParamType.ENUM,
        False,
        allowed=("one-thread-per-connection", "pool-of-threads"),
        description="connection threading model",
    ),
    ParameterSpec(
        "aria_pagecache_buffer_size",
        ParamType.SIZE,
        False,
        128 * KiB,
        64 * GiB,
        description="Aria page cache",
    ),
)


def _compare(a: str, b: str) -> Ordering:
    return gtid.compare(gtid.GtidPosition.parse(a), gtid.GtidPosition.parse(b))


FLAVOR = Flavor(
    engine=Engine.MARIADB,
    versions=VERSIONS,
    position_type="mariadb-gtid-pos",
    server_binary="mariadbd",
    root_credential_env="MARIADB_ROOT_PASSWORD",
    # The official image's switch (MariaDB/mariadb-docker): mariadb-upgrade on a data dir an older
    # major.minor wrote, before the server starts; our Debian-built image reads it the same way.
    server_env={"MARIADB_AUTO_UPGRADE": "1"},
    fixed_settings=FIXED,
    parameters=params.merged(COMMON, OWN),
    backup_methods=(BackupMethod.PHYSICAL, BackupMethod.LOGICAL),
    scratch_dirs=(
        "/tmp",  # noqa: S108 (an emptyDir in the pod, not a shared /tmp)
        "/run/mysqld",
    ),
    compare=_compare,
    # User names up to 80 characters (https://mariadb.com/kb/en/identifier-names/); mariadb.sys is the
    # server's own account.
    name_rules=NameRules(
        64, 80, SYSTEM_SCHEMAS, frozenset({"root", "mysql", "mariadb"}), reserved_prefixes=("mariadb.",)
    ),
    # A crashed primary that lost its role restarts with init_rpl_role=SLAVE: semi-sync crash recovery
    # then rolls back and truncates the binlog transactions it prepared but never committed (never
    # acknowledged to a client, possibly never received by anyone), so its history stays a prefix of the
    # new primary's and it rejoins. Since 10.6.19/10.11.9/11.4.3 (MDEV-33465) rpl_semi_sync_slave_enabled
    # alone no longer triggers that recovery: a restarting primary that keeps its role must not truncate
    # what its replicas already received. https://mariadb.com/kb/en/semisynchronous-replication/
    demoted_start_flags=("--init-rpl-role=SLAVE",),
)


class MariaDB(MySQLFamily):
    """The MariaDB strategy."""

    # MariaDB's client speaks the MySQL protocol and reads MYSQL_PWD
    # (https://mariadb.com/kb/en/mariadb-environment-variables/); drivers take mysql:// URIs.
    client = ClientInfo(
        "mysql",
        "mariadb",
        ("-h", "{host}", "-P", "{port}", "-u", "{user}", "{database}"),
        "MYSQL_PWD",
        tls_query=TLS_QUERY,
        # TLS asked for, the CA given; MariaDB's client verifies the chain only with --ssl-verify-server-cert,
        # which also checks the name (127.0.0.1 through the port-forward, not in the certificate): not passed.
        tls_args=("--ssl", "--ssl-ca={ca}"),
    )

    def __init__(self) -> None:
        super().__init__(FLAVOR)

    def role_parameters(self, primary: bool) -> Mapping[str, str]:
        """The primary half of lossless semi-sync: on only on the primary (docs/clustering.md)."""
        return {"rpl_semi_sync_master_enabled": "ON" if primary else "OFF"}
