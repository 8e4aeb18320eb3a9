"""kubetrove.handlers: kopf glue only. Importing this package registers every handler.

``kopf run -m kubetrove.handlers`` and ``kubetrove-operator`` (handlers/main.py) both load it.
"""

from kubetrove.handlers import children, resources, settings

__all__ = ["children", "resources", "settings"]
