"""The children the operator watches anyway, held in memory: the status reads them without an API call.

Why: every status computation read the rw and ro Services (two GETs), on each reconcile and on each
refresh (each StatefulSet event, each status timer run): at N=300, six of the 33 API calls per created
resource (benchmarks/scale.py, ``api_calls_per_cr``). A kopf index keeps, per Service we manage, only
what the status uses (its name and first port), from one watch stream.

kopf fills every index from its initial list before any handler runs (kopf/_core/reactor/processing.py
waits for ``operator_indexed``), so a handler never reads an index that is still being filled; after
that, the watch keeps it current. A Service the index does not hold does not exist (or was never ours).
The watch asks the API server for our label only (``settings.watching.label_selectors``), so the
cluster's other Services never reach the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from kubetrove.k8s.port import Obj
from kubetrove.render.names import LABEL_MANAGED_BY, MANAGED_BY
from kubetrove.runtime.config import OperatorConfig

SERVICES = "kubetrove_services"  # the index's id: kopf hands it to handlers under this keyword
OURS = f"{LABEL_MANAGED_BY}={MANAGED_BY}"


def service_entry(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Obj]:
    """The index entry of one Service: what ``reconcile.status`` reads of it (name, first port)."""
    meta = body["metadata"]
    ports = list((body.get("spec") or {}).get("ports") or [])[:1]
    return {(meta["namespace"], meta["name"]): {"metadata": {"name": meta["name"]}, "spec": {"ports": ports}}}


class IndexedChildren:
    """``reconcile.context.Watched`` over the kopf indexes (the live objects kopf keeps updating)."""

    def __init__(self, services: Mapping[tuple[str, str], Any]) -> None:
        self._services = services

    def service(self, namespace: str, name: str) -> Obj | None:
        """The Service as last seen by the watch, None when there is none."""
        store = self._services.get((namespace, name))
        return next(iter(store), None) if store else None


def from_indexes(indexes: Mapping[str, Any]) -> IndexedChildren | None:
    """The view over the indexes kopf passes to the startup handler (by their ids); None without them
    (a registry without ``register`` below): then the status reads the Services."""
    return IndexedChildren(indexes[SERVICES]) if SERVICES in indexes else None


def configure(settings: kopf.OperatorSettings) -> None:
    """Server-side label selectors: the watches of our children list and stream ours alone."""
    for resource in (("v1", "services"), ("apps/v1", "statefulsets")):
        settings.watching.label_selectors[resource] = OURS


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """The index of our Services."""
    kopf.index("v1", "services", id=SERVICES, labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=into)(
        service_entry
    )
