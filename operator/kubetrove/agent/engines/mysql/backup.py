"""MySQL's backups: xtrabackup (physical, in the MySQL image), mysqldump (logical).

https://docs.percona.com/percona-xtrabackup/8.0/ , https://dev.mysql.com/doc/refman/8.4/en/mysqldump.html.
"""

from __future__ import annotations

import re

from kubetrove.agent.engines.mysql_family.backup import MySQLFamilyMethods
from kubetrove.agent.protocol import Engine


class MySQLMethods(MySQLFamilyMethods):
    """xtrabackup (physical, in the MySQL image), mysqldump (logical). Unit-tested only: no MySQL here."""

    engine = Engine.MYSQL
    physical_tool = "xtrabackup"
    extract_tool = "xbstream"
    dump_tool = "mysqldump"
    client_tool = "mysql"
    dump_position_flags = ("--source-data=2", "--set-gtid-purged=ON")
    # mysqldump writes "SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '<uuid:1-42,...>';" near the top.
    dump_position = re.compile(r"GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)'", re.S)
