"""What MySQL and MariaDB share (Trove's ``mysql_common`` precedent): the my.cnf renderer, the common
part of the parameter catalog and the strategy skeleton. Each engine module supplies a ``Flavor`` with
what differs: image, server binary, GTID format, fixed replication settings, backup tools, some
parameters. SQL (replication statements: ``SOURCE_AUTO_POSITION=1`` vs ``MASTER_USE_GTID=slave_pos``)
lives in the agent's engine drivers, not here.
"""

from kubetrove.datastores._mysql_common.strategy import Flavor, MySQLFamily

__all__ = ["Flavor", "MySQLFamily"]
