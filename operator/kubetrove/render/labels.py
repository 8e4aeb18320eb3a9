"""Labels, selectors, owner references and object metadata for every child, in ONE place.

Owner references are built explicitly from the parsed ``ObjectRef`` (never ``kopf.adopt``, which reads
the handler context): ``controller=True`` makes the custom resource the managing controller, and
``blockOwnerDeletion=True`` keeps foreground deletion of the resource waiting for its children.
"""

from __future__ import annotations

from typing import Any

from kubetrove.api.common import API_VERSION, Engine
from kubetrove.api.resources import ObjectRef
from kubetrove.render import names


def selector_labels(owner: ObjectRef, engine: Engine) -> dict[str, str]:
    """The labels that select this resource's pods (the StatefulSet selector: immutable)."""
    return {
        names.LABEL_NAME: engine.value,
        names.LABEL_INSTANCE: owner.name,
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
    }


def common_labels(owner: ObjectRef, engine: Engine) -> dict[str, str]:
    """The labels every child object (and every pod) carries."""
    return {
        **selector_labels(owner, engine),
        names.LABEL_COMPONENT: names.COMPONENT,
        names.LABEL_ENGINE: engine.value,
    }


def role_selector(owner: ObjectRef, engine: Engine, role: str) -> dict[str, str]:
    """Select the pods the clustering loop labelled with ``role`` (``names.ROLE_*``)."""
    return {**selector_labels(owner, engine), names.LABEL_ROLE: role}


def owner_reference(owner: ObjectRef) -> dict[str, Any]:
    """The controller owner reference pointing at the custom resource."""
    return {
        "apiVersion": API_VERSION,
        "kind": owner.kind.kind,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(owner: ObjectRef, engine: Engine, name: str) -> dict[str, Any]:
    """``metadata`` of a child object: name, the owner's namespace, common labels, owner reference."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": common_labels(owner, engine),
        "ownerReferences": [owner_reference(owner)],
    }
