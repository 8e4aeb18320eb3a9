"""PostgreSQL datastore strategy (``strategy.PostgreSQL``) and LSN algebra (``lsn``)."""

from kubetrove.datastores.postgresql.strategy import PostgreSQL

__all__ = ["PostgreSQL"]
