"""Parameters: push changed DYNAMIC parameters to every running member through its agent.

Restart-requiring parameters need nothing here: they are in the config hash of the pod template, so
the StatefulSet rolls. Dynamic ones change the ConfigMap only (new and restarted members read it), and
this phase applies them live with ``PUT /v1/parameters`` on each member.

What has been pushed is recorded in a StatefulSet annotation, written only after every member took
the change; a failed push raises NotReady and the next attempt pushes again (PUT is idempotent).
A freshly created StatefulSet starts from the ConfigMap, so its record is the desired set at once.
The Apply phase carries the record as it stands (``record``) in the StatefulSet it applies: a new
StatefulSet is created with it, so no patch follows (a patch, and the StatefulSet event and status
refresh it caused, were about 7 of the 33 API calls per created resource, benchmarks/scale.py), and
every later apply keeps it as this phase last wrote it.
A dynamic parameter REMOVED from the spec is not reset live (the engine default is the agent's
knowledge, not ours): it returns to the default at the member's next restart.
"""

from __future__ import annotations

import json

from kubetrove.k8s.kinds import STATEFULSET
from kubetrove.k8s.pods import pod_ip
from kubetrove.k8s.port import Obj
from kubetrove.members import AgentCallError
from kubetrove.reconcile.context import Context, need
from kubetrove.reconcile.errors import NotReady

APPLIED_DYNAMIC = "kubetrove.io/applied-dynamic-parameters"


def dynamic(ctx: Context, parameters: dict[str, str]) -> dict[str, str]:
    """The dynamic subset of ``parameters`` (by the engine's catalog)."""
    catalog = need(ctx.store, "store").parameters
    return {k: v for k, v in sorted(parameters.items()) if k in catalog and catalog[k].dynamic}


async def _push(ctx: Context, changed: dict[str, str]) -> None:
    members = ctx.deps.members
    async with members.agents(need(ctx.inputs, "inputs").agent_token) as agents:
        for pod in await members.pods(ctx.parsed.ref, ctx.spec.datastore.type):
            name = pod["metadata"]["name"]
            if not pod_ip(pod):
                raise NotReady(f"pod {name} has no IP yet", 10)
            try:
                await agents.call(
                    name, members.url(ctx.namespace, pod), lambda a: a.apply_parameters(changed)
                )
            except AgentCallError as exc:
                raise NotReady(f"{name}: applying {sorted(changed)} failed: {exc.reason}", 15) from exc


def _raw(statefulset: Obj | None) -> str | None:
    return ((statefulset or {}).get("metadata", {}).get("annotations") or {}).get(APPLIED_DYNAMIC)


def record(ctx: Context, statefulset: Obj | None) -> dict[str, str]:
    """The dynamic parameters the members run: as ``statefulset`` records them, else (no record) those
    of the spec last applied, else (a new StatefulSet) the desired ones."""
    raw = _raw(statefulset)
    if raw is not None:
        recorded: dict[str, str] = json.loads(raw)
        return recorded
    if ctx.previous:
        return dynamic(ctx, dict(ctx.previous.parameters))
    return dynamic(ctx, dict(ctx.spec.parameters))


def record_annotation(ctx: Context, statefulset: Obj | None) -> dict[str, str]:
    """The annotation the Apply phase carries: the record as it stands before this reconcile's push."""
    return {APPLIED_DYNAMIC: _raw(statefulset) or json.dumps(record(ctx, statefulset), sort_keys=True)}


async def parameters(ctx: Context) -> None:
    """The Parameters phase."""
    sts = need(ctx.live_statefulset, "live statefulset")
    desired = dynamic(ctx, dict(ctx.spec.parameters))
    raw = _raw(sts)
    recorded = record(ctx, sts)
    changed = {k: v for k, v in desired.items() if recorded.get(k) != v}
    if changed:
        ctx.logger.info("Applying dynamic parameters %s", sorted(changed))
        await _push(ctx, changed)
    if raw is None or recorded != desired:
        patch = {"metadata": {"annotations": {APPLIED_DYNAMIC: json.dumps(desired, sort_keys=True)}}}
        await ctx.deps.kube.patch(STATEFULSET, ctx.namespace, ctx.names.statefulset, patch)
