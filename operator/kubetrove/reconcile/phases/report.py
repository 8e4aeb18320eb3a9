"""Status: observe the StatefulSet and Services and compute the status; ``write`` stores it once, at the end.

The status is written by the runner alone (run.py), after every phase, so the agent phases that follow
(Restored, Parameters, Users) add their conditions to ``ctx.status`` and never write it themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from kubetrove.api.status import ResourceStatus
from kubetrove.k8s import ops
from kubetrove.k8s.kinds import SERVICE, STATEFULSET
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context


def parse_status(raw: Any) -> ResourceStatus | None:
    """The status as stored, or None when absent or unreadable (then it is simply recomputed)."""
    if not isinstance(raw, dict):
        return None
    known = {f.alias or n for n, f in ResourceStatus.model_fields.items()}
    try:
        return ResourceStatus.from_wire({k: v for k, v in raw.items() if k in known})
    except ValidationError:
        return None


async def write(ctx: Context, new: ResourceStatus) -> None:
    """Patch the status subresource with ``new`` unless it already says exactly this."""
    ctx.status = new
    previous = ctx.previous_status
    if previous is not None and st.as_patch(previous) == st.as_patch(new):
        return
    await ops.patch_status(ctx.deps.kube, ctx.parsed.ref, st.as_patch(new))


async def report(ctx: Context) -> None:
    """The Status phase."""
    kube = ctx.deps.kube
    if ctx.live_statefulset is None or "status" not in ctx.live_statefulset:
        ctx.live_statefulset = await kube.get(STATEFULSET, ctx.namespace, ctx.names.statefulset)
    observed = st.Observed(
        generation=ctx.parsed.ref.generation,
        replicas=ctx.replicas,
        version=ctx.spec.datastore.version,
        credentials_secret=ctx.names.credentials_secret,
        statefulset=ctx.live_statefulset,
        rw_service=await kube.get(SERVICE, ctx.namespace, ctx.names.rw_service),
        ro_service=await kube.get(SERVICE, ctx.namespace, ctx.names.ro_service),
        namespace=ctx.namespace,
    )
    ctx.status = st.compute(observed, ctx.previous_status, ctx.deps.clock())
