"""Restored: the ``Restored`` condition of a resource created with ``spec.restoreFrom``.

What the members' restore init containers say, then their agents (``GET /v1/restore``); the rules are in
reconcile/backup/restore_status.py. Computed only while the restore is not done; once True it stays True.
"""

from __future__ import annotations

from kubetrove.api.status import ConditionType, ResourceStatus
from kubetrove.k8s.pods import pod_ip
from kubetrove.k8s.port import Obj
from kubetrove.members import AgentCallError
from kubetrove.reconcile import status as st
from kubetrove.reconcile.backup.restore_status import AgentReply, init_done, restore_state
from kubetrove.reconcile.context import Context, need


async def ask_agents(ctx: Context, pods: list[Obj]) -> dict[str, AgentReply]:
    """``GET /v1/restore`` on every member whose init container is done (else why it cannot be asked)."""
    replies: dict[str, AgentReply] = {}
    members = [p for p in pods if init_done(p)]
    if not members:
        return replies
    gateway = ctx.deps.members
    # The rendered token on a reconcile; a refresh renders nothing and reads the Secret.
    token = ctx.inputs.agent_token if ctx.inputs else await gateway.token(ctx.namespace, ctx.parsed.ref.name)
    async with gateway.agents(token or "") as agents:
        for pod in members:
            name = pod["metadata"]["name"]
            if not token or not pod_ip(pod):
                replies[name] = "no pod IP or token yet"
                continue
            url = gateway.url(ctx.namespace, pod)
            try:
                replies[name] = await agents.call(name, url, lambda a: a.restore_progress())
            except AgentCallError as exc:  # why the agent cannot say yet: the member is still restoring
                replies[name] = exc.said
    return replies


async def with_restore_condition(ctx: Context, status: ResourceStatus) -> ResourceStatus:
    """``status`` with the Restored condition updated (unchanged without restoreFrom or once True)."""
    restore = ctx.spec.restore_from
    if restore is None:
        return status
    kind = ConditionType.RESTORED
    if any(c.type == kind and c.status == "True" for c in status.conditions):
        return status
    pods = await ctx.deps.members.pods(ctx.parsed.ref, ctx.spec.datastore.type)
    state = restore_state(pods, await ask_agents(ctx, pods))
    if state is None:
        return status
    ok, reason, message = state
    text = f"DatabaseBackup {restore.backup}: {message}"
    return st.with_condition(status, kind, ok, reason, text, ctx.parsed.ref.generation, ctx.deps.clock())


async def restored(ctx: Context) -> None:
    """The Restored phase: the Status phase's result with the Restored condition updated."""
    ctx.status = await with_restore_condition(ctx, need(ctx.status, "status"))
