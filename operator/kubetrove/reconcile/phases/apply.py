"""Apply: server-side apply of every rendered child (the Secrets are left to the Credentials phase).

Adjustments to the rendered StatefulSet; the first two are about fields Kubernetes will not let us change:
- ``volumeClaimTemplates`` are immutable: an existing StatefulSet keeps its live claim sizes, and the
  Storage phase grows the PVCs themselves. New members of a scale-up get the old size and are grown too.
- Primary/replica clusters (the operator picks the primary) use ``updateStrategy: OnDelete``: the
  StatefulSet controller would roll pods from the highest ordinal down, which updates the primary
  before the replicas below it whenever the primary is not pod 0 (after a failover). With OnDelete the
  Rollout phase deletes outdated pods itself, replicas first and the primary last (docs/operations.md).
- A ring whose scale-down was refused this pass (phases/ring.py) keeps its size: ``spec.replicas`` of
  the StatefulSet is the nodes it keeps, not the spec's.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable

from kubetrove.datastores.base import HAMode
from kubetrove.k8s.kinds import NETWORK_POLICY, PDB
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.applied import annotate
from kubetrove.reconcile.context import Context, need, together
from kubetrove.reconcile.phases.parameters import record_annotation

ON_DELETE = {"type": "OnDelete"}


def operator_rolls(ctx: Context) -> bool:
    """True when the Rollout phase (not the StatefulSet controller) orders pod updates."""
    return ctx.is_cluster and need(ctx.store, "store").ha_mode is HAMode.OPERATOR_PRIMARY


def desired_statefulset(ctx: Context) -> Obj:
    """The rendered StatefulSet, adjusted for immutable claims, update order and the applied record."""
    sts = copy.deepcopy(need(ctx.manifests, "manifests").statefulset)
    live = ctx.live_statefulset
    if live is not None:
        live_claims = {c["metadata"]["name"]: c for c in live["spec"].get("volumeClaimTemplates", [])}
        for claim in sts["spec"].get("volumeClaimTemplates", []):
            old = live_claims.get(claim["metadata"]["name"])
            if old is not None:
                claim["spec"]["resources"] = copy.deepcopy(old["spec"]["resources"])
    if operator_rolls(ctx):
        sts["spec"]["updateStrategy"] = dict(ON_DELETE)
    if ctx.kept_nodes is not None:  # a ring's refused scale-down: no pod goes while its node holds data
        sts["spec"]["replicas"] = ctx.kept_nodes
    annotated = annotate(sts, ctx.spec, ctx.parsed.ref.generation)
    # The Parameters phase's record as it stands (phases/parameters.py says why it is applied here).
    annotated["metadata"]["annotations"].update(record_annotation(ctx, live))
    return annotated


async def apply(ctx: Context) -> None:
    """The Apply phase."""
    manifests = need(ctx.manifests, "manifests")
    kube = ctx.deps.kube
    skip = {id(manifests.credentials_secret), id(manifests.agent_token_secret), id(manifests.statefulset)}
    # Every child but the StatefulSet at once (none depends on another), all done before the StatefulSet:
    # what the pods mount and select exists when they start.
    calls: list[Awaitable[object]] = [kube.apply(m) for m in manifests.all() if id(m) not in skip]
    if manifests.pdb is None:
        calls.append(kube.delete(PDB, ctx.namespace, ctx.names.pdb))
    if manifests.network_policy is None:  # switched off: no stale policy keeps isolating the pods
        calls.append(kube.delete(NETWORK_POLICY, ctx.namespace, ctx.names.network_policy))
    applied = await together(*calls)
    ctx.applied = {
        (obj.get("kind", ""), obj.get("metadata", {}).get("name", "")): obj
        for obj in applied
        if isinstance(obj, dict)
    }
    ctx.live_statefulset = await kube.apply(desired_statefulset(ctx))
