"""The kubetrove API: pydantic models of each custom resource's spec and status.

Bodies from the API server are parsed ONCE, at the boundary (handlers), into these models; the rest of
the operator only ever sees typed, validated objects. The CRD YAML in ``crds/`` is generated from them
(``kubetrove.api.crdgen``), so the schema the API server enforces and the model the code uses cannot drift.
"""

from kubetrove.api.common import (
    GROUP,
    VERSION,
    Condition,
    DatastoreRef,
    DeletionPolicy,
    Engine,
    Grant,
    Privilege,
)

__all__ = ["GROUP", "VERSION", "Condition", "DatastoreRef", "DeletionPolicy", "Engine", "Grant", "Privilege"]
