"""MariaDB datastore strategy (``strategy.MariaDB``) and GTID position algebra (``gtid``)."""

from kubetrove.datastores.mariadb.strategy import MariaDB

__all__ = ["MariaDB"]
