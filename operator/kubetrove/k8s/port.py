"""``Kube``: the narrow interface every Kubernetes read and write goes through.

Production uses ``kubetrove.k8s.client.KubeClient``; unit tests use an in-memory fake implementing
the same Protocol (tests/unit/reconcile/fake_kube.py). Everything else in kubetrove.k8s (events,
leases, PVC expansion, pod labels) is written once, on top of these primitives.

Contract:
- Objects are plain JSON dicts exactly as the API server returns them.
- ``apply`` is server-side apply with the field manager ``FIELD_MANAGER`` and ``force=true``:
  kubetrove owns every field it renders, so re-applying the same manifest is a no-op and a field
  someone else changed by hand is taken back.
- ``get`` returns None for a missing object; ``delete`` returns False for one; every other
  refusal raises ``kubetrove.k8s.errors.ApiError`` (NotFound, Conflict, Invalid, ...).
- ``patch`` is a JSON merge patch (RFC 7386), optionally on a subresource such as ``status``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from kubetrove.k8s.kinds import ResourceType

FIELD_MANAGER = "kubetrove"

Obj = dict[str, Any]


class Kube(Protocol):
    """The Kubernetes API as kubetrove uses it."""

    async def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """One object, or None when it does not exist."""
        ...

    async def list(
        self, rtype: ResourceType, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[Obj]:
        """Objects of a type in a namespace (all namespaces for None), filtered by equality labels."""
        ...

    async def apply(self, manifest: Obj) -> Obj:
        """Server-side apply (field manager ``kubetrove``, force) and return the live object."""
        ...

    async def create(self, manifest: Obj) -> Obj:
        """Create; raises Conflict when it already exists."""
        ...

    async def replace(self, manifest: Obj) -> Obj:
        """PUT with the manifest's resourceVersion; raises Conflict when that version is stale."""
        ...

    async def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        patch: Obj,
        subresource: str | None = None,
    ) -> Obj:
        """JSON merge patch of an object (or of its subresource, e.g. ``status``)."""
        ...

    async def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        ...

    async def pod_log(
        self,
        namespace: str,
        pod: str,
        container: str,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
    ) -> str:
        """A container's log (the ``pods/log`` subresource: the kubelet's copy of its stdout/stderr);
        with ``timestamps`` each line starts with the kubelet's RFC 3339 time and a space."""
        ...

    def pod_log_stream(
        self,
        namespace: str,
        pod: str,
        container: str,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        since_time: str | None = None,
        timestamps: bool = False,
    ) -> AsyncIterator[str]:
        """A container's log followed (``follow=true``): its lines without their newline, as they are
        written, until the container ends or the caller stops iterating."""
        ...
