"""Rollout: replicas first, primary last, for clusters whose StatefulSet uses ``OnDelete`` (see apply.py).

One step per call, so the phase is idempotent and the periodic status refresh drives the roll on:
- wait while any member is missing, not Ready, or terminating (one member down at a time, at most);
- otherwise delete ONE outdated pod (its ``controller-revision-hash`` is not the StatefulSet's
  ``updateRevision``): replicas from the highest ordinal down, the primary (the pod labelled
  ``kubetrove.io/role=primary`` by the clustering loop, else ordinal 0) last.
The StatefulSet controller recreates the deleted pod from the new template.
"""

from __future__ import annotations

from kubetrove.k8s.kinds import POD
from kubetrove.k8s.pods import is_ready, is_terminating, ordinal
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.context import Context
from kubetrove.render.names import LABEL_ROLE, ROLE_PRIMARY

REVISION_LABEL = "controller-revision-hash"


def next_victim(pods: list[Obj], replicas: int, update_revision: str) -> Obj | None:
    """The pod to delete next, or None (nothing outdated, or wait for the members to settle)."""
    if len(pods) < replicas or any(is_terminating(p) or not is_ready(p) for p in pods):
        return None
    outdated = [p for p in pods if p["metadata"].get("labels", {}).get(REVISION_LABEL) != update_revision]
    if not outdated:
        return None
    has_primary = any(p["metadata"].get("labels", {}).get(LABEL_ROLE) == ROLE_PRIMARY for p in pods)

    def is_primary(p: Obj) -> bool:
        role = p["metadata"].get("labels", {}).get(LABEL_ROLE)
        return role == ROLE_PRIMARY if has_primary else ordinal(p) == 0

    return sorted(outdated, key=lambda p: (is_primary(p), -ordinal(p)))[0]


async def rollout(ctx: Context) -> None:
    """The Rollout phase (a no-op unless the StatefulSet uses OnDelete)."""
    sts = ctx.live_statefulset
    if sts is None or (sts["spec"].get("updateStrategy") or {}).get("type") != "OnDelete":
        return
    update_revision = (sts.get("status") or {}).get("updateRevision")
    if not update_revision:
        return
    pods = await ctx.deps.members.pods(ctx.parsed.ref, ctx.spec.datastore.type)
    pods = [p for p in pods if ordinal(p) < ctx.replicas]
    victim = next_victim(pods, ctx.replicas, update_revision)
    if victim is not None:
        ctx.logger.info("Rolling: deleting outdated pod %s", victim["metadata"]["name"])
        await ctx.deps.kube.delete(POD, ctx.namespace, victim["metadata"]["name"])
