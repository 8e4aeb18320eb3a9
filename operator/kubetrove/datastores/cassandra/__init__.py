"""Cassandra datastore strategy (``strategy.Cassandra``)."""

from kubetrove.datastores.cassandra.strategy import Cassandra

__all__ = ["Cassandra"]
