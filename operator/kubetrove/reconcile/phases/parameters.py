"""Parameters: push changed DYNAMIC parameters to every running member through its agent.

Restart-requiring parameters need nothing here: they are in the config hash of the pod template, so
the StatefulSet rolls. Dynamic ones change the ConfigMap only (new and restarted members read it), and
this phase applies them live with ``PUT /v1/parameters`` on each member.

What has been pushed is recorded in a StatefulSet annotation, written only after every member took
the change; a failed push raises NotReady and the next attempt pushes again (PUT is idempotent).
A freshly created StatefulSet starts from the ConfigMap, so its record is the desired set at once.
A dynamic parameter REMOVED from the spec is not reset live (the engine default is the agent's
knowledge, not ours): it returns to the default at the member's next restart.
"""

from __future__ import annotations

import json

from kubetrove.k8s.kinds import STATEFULSET
from kubetrove.k8s.pods import pod_ip
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


async def parameters(ctx: Context) -> None:
    """The Parameters phase."""
    sts = need(ctx.live_statefulset, "live statefulset")
    desired = dynamic(ctx, dict(ctx.spec.parameters))
    raw = (sts["metadata"].get("annotations") or {}).get(APPLIED_DYNAMIC)
    if raw is not None:
        record: dict[str, str] = json.loads(raw)
    else:
        record = dynamic(ctx, dict(ctx.previous.parameters)) if ctx.previous else desired
    changed = {k: v for k, v in desired.items() if record.get(k) != v}
    if changed:
        ctx.logger.info("Applying dynamic parameters %s", sorted(changed))
        await _push(ctx, changed)
    if raw is None or record != desired:
        patch = {"metadata": {"annotations": {APPLIED_DYNAMIC: json.dumps(desired, sort_keys=True)}}}
        await ctx.deps.kube.patch(STATEFULSET, ctx.namespace, ctx.names.statefulset, patch)
