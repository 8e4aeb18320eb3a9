"""kubetrove.handlers: kopf glue only. Importing this package registers every handler.

``kopf run -m kubetrove.handlers`` and ``kubetrove-operator`` (handlers/main.py) both load it.
"""

from kubetrove.handlers import backups, children, clustering, resources, settings

__all__ = ["backups", "children", "clustering", "resources", "settings"]
