"""What was last applied, recorded on the StatefulSet's own metadata (never its pod template).

Why not kopf's ``old`` body: kopf records the last *handled* spec, including specs we refused. If a user
shrinks storage from 10Gi to 5Gi (refused), then asks for 6Gi, kopf's diff says "grow 5Gi -> 6Gi" while
the volumes are 10Gi. Validation against what is really applied cannot be fooled that way. Metadata
annotations do not change the StatefulSet's generation, so recording them never rolls pods.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s.port import Obj

APPLIED_SPEC = "kubetrove.io/applied-spec"
APPLIED_GENERATION = "kubetrove.io/applied-generation"


def annotate(statefulset: Obj, spec: InstanceSpec, generation: int) -> Obj:
    """A copy of the rendered StatefulSet carrying the spec and generation being applied."""
    meta: dict[str, Any] = dict(statefulset["metadata"])
    meta["annotations"] = {
        **meta.get("annotations", {}),
        APPLIED_SPEC: json.dumps(spec.to_wire(), sort_keys=True, separators=(",", ":")),
        APPLIED_GENERATION: str(generation),
    }
    return {**statefulset, "metadata": meta}


def applied_spec(statefulset: Obj | None, spec_type: type[InstanceSpec]) -> InstanceSpec | None:
    """The spec last applied, or None (no StatefulSet yet, or an unreadable record)."""
    raw = ((statefulset or {}).get("metadata", {}).get("annotations") or {}).get(APPLIED_SPEC)
    if not raw:
        return None
    try:
        return spec_type.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None


def applied_generation(statefulset: Obj | None) -> int | None:
    """The custom resource generation last applied, or None."""
    raw = ((statefulset or {}).get("metadata", {}).get("annotations") or {}).get(APPLIED_GENERATION)
    return int(raw) if raw and raw.isdigit() else None
