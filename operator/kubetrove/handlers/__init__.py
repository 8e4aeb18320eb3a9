"""kubetrove.handlers: kopf glue only. ``register`` hands every handler to a kopf registry.

``kubetrove-operator`` (handlers/main.py, the composition root) reads the configuration once, registers
the handlers with it and runs kopf.
"""

from __future__ import annotations

import kopf

from kubetrove.handlers import admission, backups, children, clustering, resources, settings
from kubetrove.runtime.config import OperatorConfig

__all__ = ["register"]


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Every handler of the operator, configured by ``config``."""
    for module in (settings, resources, children, backups, clustering, admission):
        module.register(into, config)
