"""StatefulSet events refresh their owner's status at once (the timer is only the backstop)."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from kubetrove.api.common import API_VERSION
from kubetrove.api.resources import CLUSTER, INSTANCE, ObjectRef
from kubetrove.handlers.errors import kopf_errors
from kubetrove.handlers.resources import parse
from kubetrove.k8s import ops
from kubetrove.reconcile import run
from kubetrove.render.names import LABEL_MANAGED_BY, MANAGED_BY
from kubetrove.runtime.config import OperatorConfig

OWNER_KINDS = {INSTANCE.kind: INSTANCE, CLUSTER.kind: CLUSTER}


async def statefulset_event(
    body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Refresh the owning DatabaseInstance/DatabaseCluster from its StatefulSet's new state.

    The event carries the StatefulSet: the refresh uses it as observed instead of reading it again (one
    GET less per event); after a DELETED event it reads what is there now.

    kopf's initial list (event type None: at the operator's start, and after a watch's resourceVersion
    expired) refreshes nothing: at the start every resource is resumed, i.e. reconciled with its status
    computed, and these refreshes (one per StatefulSet, 1100 at N=1100) only queued before the resumes;
    a change missed while a watch was broken reaches the status by the next event or the status timer.
    """
    if event.get("type") is None:
        return
    statefulset = None if event.get("type") == "DELETED" else copy.deepcopy(dict(body))
    for ref in body.get("metadata", {}).get("ownerReferences", []):
        kind = OWNER_KINDS.get(ref.get("kind", ""))
        if kind is None or ref.get("apiVersion") != API_VERSION:
            continue
        owner = ObjectRef(body["metadata"]["namespace"], ref["name"], ref.get("uid", ""), 0, kind)
        with kopf_errors():
            async with memo.deps.refresh_slots:  # the owner is read once a slot is free: as it is then
                live = await ops.get_custom(memo.deps.kube, owner)
                if live is not None and not live["metadata"].get("deletionTimestamp"):
                    await run.refresh(parse(kind, live), live.get("status"), memo.deps, logger, statefulset)


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """StatefulSets we manage (by label): their events refresh the owner."""
    kopf.on.event("apps", "v1", "statefulsets", labels={LABEL_MANAGED_BY: MANAGED_BY}, registry=into)(
        statefulset_event
    )
