"""Small, named operations over ``Kube``: status patches, PVC expansion, pod labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetrove.api.resources import ObjectRef
from kubetrove.k8s.kinds import CUSTOM, POD, PVC, ResourceType
from kubetrove.k8s.port import Kube, Obj


def custom_type(ref: ObjectRef) -> ResourceType:
    """The ResourceType of one of our custom resources."""
    return CUSTOM[ref.kind.kind]


async def get_custom(kube: Kube, ref: ObjectRef) -> Obj | None:
    """The live body of a custom resource (None when it was deleted)."""
    return await kube.get(custom_type(ref), ref.namespace, ref.name)


async def patch_status(kube: Kube, ref: ObjectRef, status: Mapping[str, Any]) -> Obj:
    """Merge-patch the ``status`` subresource of a custom resource."""
    return await kube.patch(custom_type(ref), ref.namespace, ref.name, {"status": dict(status)}, "status")


async def expand_pvc(kube: Kube, namespace: str, name: str, size: str) -> Obj:
    """Ask for a bigger volume (the StorageClass must allow expansion; shrinking is refused earlier)."""
    patch = {"spec": {"resources": {"requests": {"storage": size}}}}
    return await kube.patch(PVC, namespace, name, patch)


async def label_pod(kube: Kube, namespace: str, name: str, labels: Mapping[str, str | None]) -> Obj:
    """Set (or, with None, remove) labels on a pod: how the rw/ro Services follow the primary."""
    return await kube.patch(POD, namespace, name, {"metadata": {"labels": dict(labels)}})
