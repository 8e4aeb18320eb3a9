"""MariaDB's backups: mariadb-backup (physical), mariadb-dump (logical).

https://mariadb.com/kb/en/mariabackup-options/, https://mariadb.com/kb/en/mariadb-dump/
(``--single-transaction``, ``--master-data=2 --gtid``).
"""

from __future__ import annotations

import re

from kubetrove.agent.engines.mysql_family.backup import MySQLFamilyMethods
from kubetrove.agent.protocol import Engine


class MariaDBMethods(MySQLFamilyMethods):
    """mariadb-backup (physical), mariadb-dump (logical)."""

    engine = Engine.MARIADB
    physical_tool = "mariadb-backup"
    extract_tool = "mbstream"
    dump_tool = "mariadb-dump"
    client_tool = "mariadb"
    # https://mariadb.com/kb/en/mariadb-command-line-client/#tls-options (11.4+ verifies by default)
    tls_client_options = "ssl\nssl-verify-server-cert=0\n"
    dump_position_flags = ("--master-data=2", "--gtid")
    # --master-data=2 --gtid ends the dump with a commented "SET GLOBAL gtid_slave_pos='0-1-42';".
    dump_position = re.compile(r"gtid_slave_pos='([^']*)'")
