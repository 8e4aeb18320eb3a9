"""Small, named operations over ``Kube``: status patches, PVC expansion, pod labels, owner references."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kubetrove.api.resources import ObjectRef
from kubetrove.k8s.errors import Conflict, NotFound
from kubetrove.k8s.kinds import CUSTOM, POD, PVC, ResourceType
from kubetrove.k8s.port import Kube, Obj

log = logging.getLogger(__name__)


def custom_type(ref: ObjectRef) -> ResourceType:
    """The ResourceType of one of our custom resources."""
    return CUSTOM[ref.kind.kind]


async def get_custom(kube: Kube, ref: ObjectRef) -> Obj | None:
    """The live body of a custom resource (None when it was deleted)."""
    return await kube.get(custom_type(ref), ref.namespace, ref.name)


async def patch_status(
    kube: Kube, ref: ObjectRef, status: Mapping[str, Any], resource_version: str | None = None
) -> Obj:
    """Merge-patch the ``status`` subresource of a custom resource; with ``resource_version``, only over
    that version (the API server answers 409, Conflict, when the object has changed since)."""
    patch: Obj = {"status": dict(status)}
    if resource_version is not None:
        patch["metadata"] = {"resourceVersion": resource_version}
    return await kube.patch(custom_type(ref), ref.namespace, ref.name, patch, "status")


async def update_status(
    kube: Kube,
    ref: ObjectRef,
    build: Callable[[Obj], Obj | None],
    retries: int = 5,
    read: Callable[[], Awaitable[Obj]] | None = None,
) -> Obj | None:
    """Read the resource (``read``, else a GET: NotFound when it is gone), build a status patch from the
    live body (None: nothing to write), write it with the resourceVersion read; on Conflict read again.

    For writers that share a list with another writer (``conditions``: a merge patch replaces it
    whole). Returns the body written (None: nothing was). Raises Conflict after ``retries`` tries."""
    for attempt in range(retries):
        body = await read() if read is not None else await get_custom(kube, ref)
        if body is None:
            raise NotFound(404, "NotFound", f"{ref.kind.kind} {ref.namespace}/{ref.name}")
        status = build(body)
        if status is None:
            return None
        patch = {"metadata": {"resourceVersion": body["metadata"]["resourceVersion"]}, "status": status}
        try:
            return await kube.patch(custom_type(ref), ref.namespace, ref.name, patch, "status")
        except Conflict:
            log.info("status of %s changed meanwhile (attempt %d); re-reading", ref.name, attempt + 1)
    raise Conflict(409, "Conflict", f"status of {ref.name}: gave up after {retries} tries")


async def expand_pvc(kube: Kube, namespace: str, name: str, size: str) -> Obj:
    """Ask for a bigger volume (the StorageClass must allow expansion; shrinking is refused earlier)."""
    patch = {"spec": {"resources": {"requests": {"storage": size}}}}
    return await kube.patch(PVC, namespace, name, patch)


async def label_pod(kube: Kube, namespace: str, name: str, labels: Mapping[str, str | None]) -> Obj:
    """Set (or, with None, remove) labels on a pod: how the rw/ro Services follow the primary."""
    return await kube.patch(POD, namespace, name, {"metadata": {"labels": dict(labels)}})


def _refs(obj: Obj) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("ownerReferences") or [])


async def orphan(kube: Kube, rtype: ResourceType, namespace: str, name: str, owner_uid: str) -> bool:
    """Drop ``owner_uid``'s owner reference, so the garbage collector keeps the object when the owner
    goes. False when the object does not exist or had no such reference."""
    obj = await kube.get(rtype, namespace, name)
    if obj is None or not any(r.get("uid") == owner_uid for r in _refs(obj)):
        return False
    # A merge patch replaces the whole list: the other owners' references are written back as they were.
    keep = [r for r in _refs(obj) if r.get("uid") != owner_uid]
    await kube.patch(rtype, namespace, name, {"metadata": {"ownerReferences": keep or None}})
    return True


async def adopt(kube: Kube, rtype: ResourceType, obj: Obj, reference: Mapping[str, Any]) -> bool:
    """Add the owner ``reference`` to ``obj`` unless it is there already (False then)."""
    if any(r.get("uid") == reference["uid"] for r in _refs(obj)):
        return False
    refs = [r for r in _refs(obj) if not r.get("controller")] + [dict(reference)]
    meta = obj["metadata"]
    await kube.patch(rtype, meta["namespace"], meta["name"], {"metadata": {"ownerReferences": refs}})
    return True
