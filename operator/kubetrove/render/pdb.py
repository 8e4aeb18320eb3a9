"""The PodDisruptionBudget: at most one member voluntarily evicted at a time.

Only for two or more members. With one member, ``maxUnavailable: 1`` would protect nothing and
``maxUnavailable: 0`` would block node drains forever; an instance accepts the downtime instead.
"""

from __future__ import annotations

from typing import Any

from kubetrove.datastores.base import Datastore
from kubetrove.render import labels
from kubetrove.render.inputs import RenderInputs


def pdb(inputs: RenderInputs, store: Datastore) -> dict[str, Any] | None:
    """``policy/v1`` PodDisruptionBudget with ``maxUnavailable: 1``, or None for a single member."""
    if inputs.replicas < 2:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": inputs.metadata(inputs.names.pdb),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels.selector_labels(inputs.owner, store.engine)},
        },
    }
