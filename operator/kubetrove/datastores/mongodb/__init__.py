"""MongoDB datastore strategy (``strategy.MongoDB``) and optime comparison (``optime``)."""

from kubetrove.datastores.mongodb.strategy import MongoDB

__all__ = ["MongoDB"]
