"""MySQL datastore strategy (``strategy.MySQL``) and GTID set algebra (``gtid``)."""

from kubetrove.datastores.mysql.strategy import MySQL

__all__ = ["MySQL"]
