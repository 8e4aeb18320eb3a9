"""Status: observe the StatefulSet and Services and compute the status; ``write`` stores it once, at the end.

The status is written by the runner alone (run.py), after every phase, so the agent phases that follow
(Restored, Parameters, Users) add their conditions to ``ctx.status`` and never write it themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from kubetrove.api.common import ConditionStatus
from kubetrove.api.status import ConditionType, ResourceStatus
from kubetrove.k8s import events, ops
from kubetrove.k8s.errors import ApiError, Conflict
from kubetrove.k8s.kinds import CUSTOM, PVC, SERVICE, STATEFULSET, STORAGE_CLASS
from kubetrove.k8s.port import Obj
from kubetrove.reconcile import causes
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context, member_pods


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
    if ctx.write_precondition is None:
        await ops.patch_status(ctx.deps.kube, ctx.parsed.ref, st.as_patch(new))
        return
    await _write_over(ctx, st.as_patch(previous) if previous is not None else {}, st.as_patch(new))


async def _write_over(ctx: Context, base: dict[str, Any], ours: dict[str, Any]) -> None:
    """A status refresh's write, over the resourceVersion it computed from (``Context.write_precondition``).
    On a conflict (written since) it is rebased once over the stored status (``status.rebase``), unless the
    spec changed meanwhile (then the reconcile of the new generation writes); a second conflict drops it
    (the next refresh computes again)."""
    ref, kube = ctx.parsed.ref, ctx.deps.kube
    patch, version = ours, ctx.write_precondition
    for attempt in range(2):
        try:
            written = await ops.patch_status(kube, ref, patch, version)
        except Conflict:
            stored = await kube.get(CUSTOM[ref.kind.kind], ref.namespace, ref.name) if attempt == 0 else None
            if stored is None or stored["metadata"].get("generation") != ref.generation:
                ctx.logger.debug("The status changed since this refresh began: its write is dropped")
                return
            theirs = {k: v for k, v in (stored.get("status") or {}).items() if k in ours}
            patch, version = st.rebase(base, ours, theirs), str(stored["metadata"]["resourceVersion"])
            continue
        ctx.write_precondition = str(written["metadata"]["resourceVersion"])
        return


async def _members(ctx: Context) -> causes.MembersReport | None:
    """Why members do not run, from their pods, claims and storage classes (reconcile/causes.py); None
    while every member is ready, so a healthy resource costs no extra API call."""
    sts = ctx.live_statefulset
    if sts is None or int((sts.get("status") or {}).get("readyReplicas", 0)) >= ctx.running_members:
        return None
    kube = ctx.deps.kube
    pods = await member_pods(ctx)
    unscheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "False"
        for p in pods
        for c in (p.get("status") or {}).get("conditions") or []
    )
    claims = (
        await kube.list(PVC, ctx.namespace, sts["spec"]["selector"]["matchLabels"]) if unscheduled else []
    )
    classes: list[str] | None = []
    for name in causes.claimed_classes(claims):
        try:
            if await kube.get(STORAGE_CLASS, None, name) is not None and classes is not None:
                classes.append(name)
        except ApiError as exc:  # not allowed or not reachable: never call a class missing then
            ctx.logger.warning("Cannot read StorageClass %s: %s", name, exc)
            classes = None
    deadline = ctx.spec.progress_deadline_seconds
    return causes.members_report(pods, claims, classes, ctx.deps.clock(), deadline)


def _degraded(status: ResourceStatus | None) -> tuple[str, str] | None:
    for c in status.conditions if status else []:
        if c.type == ConditionType.DEGRADED and c.status == ConditionStatus.TRUE:
            return c.reason, c.message
    return None


async def _announce(ctx: Context, new: ResourceStatus) -> None:
    """A Warning Event when the resource turns Degraded or its reason changes (once per change)."""
    now, before = _degraded(new), _degraded(ctx.previous_status)
    if now is None or (before is not None and before[0] == now[0]):
        return
    try:  # the condition is the record; a refused Event is logged, not fatal
        await events.post_event(ctx.deps.kube, ctx.parsed.ref, events.EventType.WARNING, *now)
    except ApiError as exc:
        ctx.logger.warning("Could not post the %s Event: %s", now[0], exc)


async def _service(ctx: Context, name: str) -> Obj | None:
    """A Service as the Apply phase just applied it (a reconcile), else read (a refresh).

    Not from a kopf index (tried, benchmarks/scale.py at N=1000): kopf holds every handler until each
    indexed object is indexed, and its readiness check is quadratic in the objects listed at start;
    3300 Services stalled the restart for minutes (docs/operations.md, Scale)."""
    applied = ctx.applied.get((SERVICE.kind, name))
    if applied is not None:
        return applied
    return await ctx.deps.kube.get(SERVICE, ctx.namespace, name)


async def report(ctx: Context) -> None:
    """The Status phase."""
    kube = ctx.deps.kube
    if ctx.live_statefulset is None or "status" not in ctx.live_statefulset:
        ctx.live_statefulset = await kube.get(STATEFULSET, ctx.namespace, ctx.names.statefulset)
    observed = st.Observed(
        generation=ctx.parsed.ref.generation,
        replicas=ctx.running_members,  # a ring's refused scale-down: its ScaleDown condition says why
        version=ctx.spec.datastore.version,
        credentials_secret=ctx.names.credentials_secret,
        statefulset=ctx.live_statefulset,
        rw_service=await _service(ctx, ctx.names.rw_service),
        ro_service=await _service(ctx, ctx.names.ro_service),
        namespace=ctx.namespace,
        members=await _members(ctx),
    )
    # A phase before this one may have set a condition of its own (Decommission's ScaleDown): kept.
    ctx.status = st.compute(observed, ctx.status or ctx.previous_status, ctx.deps.clock())
    await _announce(ctx, ctx.status)
