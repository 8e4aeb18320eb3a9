"""The engine configuration ConfigMap and the pod template's config hash.

Why the hash covers only restart-requiring parameters: the ConfigMap holds every parameter (so a
restarted engine starts with all of them), but a *dynamic* parameter is applied live by the operator
through the agent (``PUT /v1/parameters``). If the pod template changed with it, the StatefulSet would
roll every pod for a change that needs no restart. Hashing the parameters themselves, not the rendered
file, also keeps kubetrove's fixed settings out of it: an operator upgrade alone never rolls pods.
A parameter missing from the catalog counts as restart-requiring (the safe side; validation rejects it
before render anyway).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubetrove.datastores.base import Datastore
from kubetrove.render.inputs import RenderInputs


def config_map(inputs: RenderInputs, store: Datastore) -> dict[str, Any]:
    """The ConfigMap mounted at ``store.config_file.mount_dir``: one file, the engine's config."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": inputs.metadata(inputs.names.config_map),
        "data": {
            store.config_file.file_name: store.render_config(
                inputs.spec.parameters, clustered=inputs.is_cluster, tls=inputs.server_tls
            )
        },
    }


def restart_parameters(inputs: RenderInputs, store: Datastore) -> dict[str, str]:
    """The parameters whose change needs an engine restart (sorted by name)."""
    catalog = store.parameters
    return {
        name: value
        for name, value in sorted(inputs.spec.parameters.items())
        if name not in catalog or not catalog[name].dynamic
    }


def config_hash(inputs: RenderInputs, store: Datastore) -> str:
    """sha256 (hex) of the restart-requiring parameters, canonically serialised."""
    canonical = json.dumps(restart_parameters(inputs, store), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
