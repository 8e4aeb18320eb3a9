"""Ring: the node changes a ring of equals (``HAMode.NO_PRIMARY``, Cassandra) needs from the operator.

Two phases, both no-ops for every other engine and for instances:

``replacements`` (in the reconcile AND the level-triggered refresh): every member the ring sees as down
(``status.members[].ringState`` "D?", written by the ring loop) gets a key ``replace-address.<pod>`` in
the engine ConfigMap holding the node's last ring address; a member that is up again loses its key. The
engine's start script passes it as ``-Dcassandra.replace_address_first_boot``. Why this is safe for a
node that merely restarts: Cassandra reads the flag only on the FIRST boot of an empty data directory
(a node that has bootstrapped ignores it), so only a pod whose volume was lost (a replacement node)
takes over the dead node's tokens and host id instead of trying to bootstrap as a new node, which
Cassandra refuses while a node owning ranges is down. The keys are merge-patched (not part of the
rendered, server-side-applied ConfigMap): they follow the observed ring, not the spec, and the config
hash never sees them, so a node going down never rolls the pods.
https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/topo_changes.html#replacing-a-dead-node
Member 0, the seed, is replaced the same way: a seed never bootstraps, so Cassandra refuses
replace_address on a node listed in its own seeds ("Replacing a node without bootstrapping risks
invalidating consistency guarantees", seen on 5.0.9), and the start script gives member 0 on an empty
volume with a replace key member 1 as its seed (datastores/cassandra/strategy.py).

``decommission`` (reconcile, before Apply): a ring that shrinks ``N -> M`` first ASKS a staying node
whether ``M`` nodes could hold every keyspace but the ring's own system keyspaces and the spec keyspaces
whose factor the spec lowers (``POST /v1/ring/decommission/check``; nothing is changed). Then it lowers
those: the system keyspaces to ``min(M, 3)``, each lowered spec keyspace to its new factor (recorded for
the Users phase). Then it asks each leaving node's agent, highest ordinal first and one at a time, to
leave the ring (``nodetool decommission``: the node streams its ranges to the remaining ones). Only then
does Apply shrink the StatefulSet, so a pod is never deleted while it still owns data.

A refusal (the check's, or the leaving node's own for a keyspace made since) names every keyspace in the
way (spec validation already refuses the spec's own keyspaces; this catches keyspaces made over CQL). The
pass then COMPLETES rather than failing: ``ScaleDown`` False ``Refused`` with the agent's words, a Warning
Event when the words are new, the StatefulSet kept at the nodes still in the ring (Apply), the ring's
keyspaces left at their factors (the Users phase fits them to the nodes kept). Why complete and not retry
the handler: a failed spec handler keeps kopf's last-handled spec at the one before, so putting
``spec.replicas`` back would look like no change and run nothing (seen on pods: observedGeneration lagged
and the lowered factors stayed). The level-triggered status refresh asks again instead (``refused_shrink``
makes it run the whole reconcile), so lowering the keyspace in the way over CQL lets the shrink proceed,
and putting ``spec.replicas`` back is a spec change like any other (``scale_down_settled`` sets the
condition True). A node already gone from the ring (an earlier pass decommissioned it and the operator
restarted before the shrink) is not asked again.
Not covered: removing a node whose agent cannot be reached (``nodetool removenode``): the phase waits.
"""

from __future__ import annotations

import json

from kubetrove.agent.protocol import Status
from kubetrove.api.common import Condition, ConditionStatus
from kubetrove.api.status import ConditionType, ResourceStatus
from kubetrove.datastores.base import HAMode
from kubetrove.datastores.validation import DEFAULT_MAX_REPLICATION_FACTOR, replication_factor
from kubetrove.k8s import events
from kubetrove.k8s.kinds import CONFIG_MAP, CUSTOM, STATEFULSET
from kubetrove.k8s.pods import is_terminating, ordinal
from kubetrove.k8s.port import Obj
from kubetrove.members import Agent, AgentCallError, AgentRefused
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context, need
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases.users import APPLIED_USERS, recorded

REPLACE_KEY = "replace-address.{pod}"  # a ConfigMap key: [-._a-zA-Z0-9]+, and a pod name fits
REPLACE_PREFIX = "replace-address."
# nodetool decommission streams every range the node holds: minutes on a real data set.
DECOMMISSION_TIMEOUT_SECONDS = 3600.0
REFUSED_RETRY_SECONDS = 30.0


def is_ring(ctx: Context) -> bool:
    """A DatabaseCluster of an engine without a primary (a ring of equals)."""
    return ctx.is_cluster and need(ctx.store, "store").ha_mode is HAMode.NO_PRIMARY


def wanted_replacements(status: ResourceStatus | None, replicas: int) -> dict[str, str]:
    """pod -> the ring address of its node, for every member the ring sees down (pure)."""
    if status is None:
        return {}
    return {
        m.pod: m.address
        for m in status.members
        if m.ring_state is not None
        and m.ring_state.startswith("D")
        and m.address
        and _ordinal(m.pod) < replicas
    }


def _ordinal(pod: str) -> int:
    return int(pod.rsplit("-", 1)[1])


def replacement_patch(config_map: Obj, wanted: dict[str, str]) -> dict[str, str | None]:
    """The merge patch of the ConfigMap's data that leaves exactly ``wanted`` as replace keys (pure)."""
    data = config_map.get("data") or {}
    have = {k[len(REPLACE_PREFIX) :]: v for k, v in data.items() if k.startswith(REPLACE_PREFIX)}
    patch: dict[str, str | None] = {
        REPLACE_KEY.format(pod=p): a for p, a in wanted.items() if have.get(p) != a
    }
    patch.update({REPLACE_KEY.format(pod=p): None for p in have if p not in wanted})
    return patch


async def replacements(ctx: Context) -> None:
    """The Replacements phase (see the module docstring)."""
    if not is_ring(ctx):
        return
    kube = ctx.deps.kube
    config_map = await kube.get(CONFIG_MAP, ctx.namespace, ctx.names.config_map)
    if config_map is None:
        return  # not applied yet: no member has been seen either
    patch = replacement_patch(config_map, wanted_replacements(ctx.previous_status, ctx.replicas))
    if not patch:
        return
    await kube.patch(CONFIG_MAP, ctx.namespace, ctx.names.config_map, {"data": patch})
    for key, address in sorted(patch.items()):
        pod = key[len(REPLACE_PREFIX) :]
        if address is None:
            ctx.logger.info("%s is up again: its replacement address is withdrawn", pod)
        else:
            ctx.logger.warning(
                "%s is down in the ring: a new node in its place replaces %s (replace_address_first_boot)",
                pod,
                address,
            )


def _scale_down(status: ResourceStatus | None) -> Condition | None:
    """The ScaleDown condition of ``status``, if it has one."""
    found = [c for c in (status.conditions if status else []) if c.type == ConditionType.SCALE_DOWN]
    return found[0] if found else None


def _condition(ctx: Context, ok: bool, reason: str, message: str) -> None:
    base = ctx.status or ctx.previous_status or ResourceStatus()
    gen, now = ctx.parsed.ref.generation, ctx.deps.clock()
    ctx.status = st.with_condition(base, ConditionType.SCALE_DOWN, ok, reason, message, gen, now)


async def _event(ctx: Context, warning: bool, reason: str, message: str) -> None:
    etype = events.EventType.WARNING if warning else events.EventType.NORMAL
    await events.post_quietly(
        ctx.deps.kube, ctx.parsed.ref, etype, reason, message, "ScaleDown", ctx.logger,
        ctx.deps.reporting_instance,
    )  # fmt: skip


def _lowered(ctx: Context, record: dict[str, object]) -> dict[str, int]:
    """The spec keyspaces whose factor the spec lowers with the shrink: name -> the new factor."""
    had = record.get("factors") or {}
    assert isinstance(had, dict)
    return {
        db.name: factor
        for db in ctx.spec.databases
        if db.name in had and (factor := replication_factor(db, ctx.replicas)) < had[db.name]
    }


async def _fit_replication(ctx: Context, staying: Obj) -> None:
    """Lower what the smaller ring cannot hold, through a staying node, before any node leaves: the ring's
    system keyspaces to ``min(M, 3)`` and each spec keyspace whose factor the spec lowered; the Users
    record says so (its phase runs after Apply, too late: the agent would refuse the decommission)."""
    members, token = ctx.deps.members, need(ctx.inputs, "inputs").agent_token
    record = recorded(need(ctx.live_statefulset, "live statefulset"))
    ring = min(ctx.replicas, DEFAULT_MAX_REPLICATION_FACTOR)
    lowered = _lowered(ctx, record)
    if record.get("ring") == ring and not lowered:
        return

    async def apply(agent: Agent) -> None:
        if record.get("ring") != ring:
            await agent.ensure_ring_replication(ring)
        for name, factor in sorted(lowered.items()):
            await agent.ensure_database(name, factor)

    name = staying["metadata"]["name"]
    try:
        async with members.agents(token, timeout=600.0, retries=0) as agents:
            await agents.call(name, members.url(ctx.namespace, staying), apply)
    except AgentCallError as exc:
        raise NotReady(
            f"fitting the keyspaces to {ctx.replicas} nodes before the scale-down: {exc}", 15
        ) from exc
    record["ring"] = ring
    record["factors"] = {**record.get("factors", {}), **lowered}
    patch = {"metadata": {"annotations": {APPLIED_USERS: json.dumps(record, sort_keys=True)}}}
    await ctx.deps.kube.patch(STATEFULSET, ctx.namespace, ctx.names.statefulset, patch)


async def _leave_check(ctx: Context, staying: Obj) -> str | None:
    """Would the ring, once its system keyspaces and the spec's lowered keyspaces fit ``spec.replicas``
    nodes, still hold a keyspace those nodes cannot? The agent's words if so (nothing is changed)."""
    members, token = ctx.deps.members, need(ctx.inputs, "inputs").agent_token
    lowering = sorted(_lowered(ctx, recorded(need(ctx.live_statefulset, "live statefulset"))))
    name = staying["metadata"]["name"]
    try:
        async with members.agents(token) as agents:
            await agents.call(
                name, members.url(ctx.namespace, staying), lambda a: a.leave_check(ctx.replicas, lowering)
            )
    except AgentRefused as exc:
        return exc.said
    except AgentCallError as exc:
        raise NotReady(
            f"asking {name} whether {ctx.replicas} nodes can hold every keyspace: {exc}", 15
        ) from exc
    return None


async def _refuse(ctx: Context, keep: int, message: str) -> None:
    """The scale-down stops here, and the pass completes: the StatefulSet keeps ``keep`` nodes (Apply),
    ``ScaleDown`` False ``Refused`` says why, with a Warning Event the first time it says so. The status
    refresh asks again (``refused_shrink``), so lowering the keyspace in the way lets the shrink proceed;
    putting ``spec.replicas`` back is a spec change like any other."""
    ctx.kept_nodes = keep
    before = _scale_down(ctx.previous_status)
    _condition(ctx, False, "Refused", message)
    if before is None or before.status != ConditionStatus.FALSE or before.message != message:
        await _event(ctx, True, "ScaleDownRefused", message)
    ctx.logger.warning("Scale-down to %d nodes refused, keeping %d: %s", ctx.replicas, keep, message)


async def refused_shrink(ctx: Context) -> bool:
    """A ring that runs more nodes than ``spec.replicas`` because its scale-down was refused: the status
    refresh runs the whole reconcile for it, which asks again (level-triggered: a keyspace lowered over
    CQL changes no spec, so no spec handler would run). Not when the resource has a newer generation than
    the body this refresh was handed: the spec handler is on that one, and a shrink must never follow a
    spec the user has already changed (e.g. ``spec.replicas`` put back)."""
    live = ctx.live_statefulset
    if not is_ring(ctx) or live is None or ctx.previous_status is None:
        return False
    have = int((live.get("spec") or {}).get("replicas") or 0)
    condition = _scale_down(ctx.previous_status)
    if not (
        have > ctx.replicas
        and condition is not None
        and condition.status == ConditionStatus.FALSE
        and condition.reason == "Refused"
    ):
        return False
    ref = ctx.parsed.ref
    current = await ctx.deps.kube.get(CUSTOM[ref.kind.kind], ref.namespace, ref.name)
    return current is not None and current["metadata"].get("generation") == ref.generation


async def _in_ring(ctx: Context, staying: Obj, leaving: Obj) -> bool:
    """False when ``leaving``'s node is no longer in the ring as a staying node sees it."""
    members, token = ctx.deps.members, need(ctx.inputs, "inputs").agent_token

    async def status(pod: Obj) -> Status:
        async with members.agents(token) as agents:
            return await agents.call(
                pod["metadata"]["name"], members.url(ctx.namespace, pod), lambda a: a.status()
            )

    try:
        view, own = await status(staying), await status(leaving)
    except AgentCallError:
        return True  # cannot tell: ask the leaving node itself (its agent's answer decides)
    if view.ring is None or own.host_id is None:
        return True
    return own.host_id in {n.host_id for n in view.ring}


async def decommission(ctx: Context) -> None:
    """The Decommission phase (see the module docstring)."""
    live = ctx.live_statefulset
    if not is_ring(ctx) or live is None:
        return
    have = int((live.get("spec") or {}).get("replicas") or 0)
    if ctx.replicas >= have:
        return
    pods = {
        ordinal(p): p
        for p in await ctx.deps.members.pods(ctx.parsed.ref, ctx.spec.datastore.type)
        if not is_terminating(p)
    }
    staying = pods.get(0)
    if staying is None:
        raise NotReady("the ring shrinks through member 0, which has no pod right now", 15)
    refused = await _leave_check(ctx, staying)
    if refused is not None:
        await _refuse(ctx, have, f"the ring keeps its {have} nodes: {refused}")
        return
    await _fit_replication(ctx, staying)
    members, token = ctx.deps.members, need(ctx.inputs, "inputs").agent_token
    for number in range(have - 1, ctx.replicas - 1, -1):
        leaving = pods.get(number)
        if leaving is None or not await _in_ring(ctx, staying, leaving):
            continue
        name = leaving["metadata"]["name"]
        ctx.logger.info("Decommissioning %s: it streams its ranges to the remaining nodes", name)
        try:
            async with members.agents(token, timeout=DECOMMISSION_TIMEOUT_SECONDS, retries=0) as agents:
                await agents.call(name, members.url(ctx.namespace, leaving), lambda a: a.decommission())
        except AgentRefused as exc:  # a keyspace made since the check: the nodes above have left
            await _refuse(ctx, number + 1, f"{name} was not decommissioned: {exc.said}")
            return
        except AgentCallError as exc:
            raise NotReady(f"decommissioning {name}: {exc}", 15) from exc
        message = f"{name} left the ring (decommissioned)"
        _condition(ctx, True, "Decommissioned", message)
        await _event(ctx, False, "Decommissioned", message)


async def scale_down_settled(ctx: Context) -> None:
    """The ScaleDown phase of the refresh (after Status): a ``Refused`` ScaleDown condition whose ring now
    runs ``spec.replicas`` nodes (the shrink went through, or was given up) is set True.

    Why level-triggered: the refresh computes the status from the body it was handed, so a refresh that
    started before the successful reconcile wrote ``Decommissioned`` writes the old ``Refused`` back (the
    conditions list is replaced as a whole); seen in the e2e run. This phase converges it on the next one.
    """
    if not is_ring(ctx) or ctx.status is None or ctx.live_statefulset is None:
        return
    refused = [
        c
        for c in ctx.status.conditions
        if c.type == ConditionType.SCALE_DOWN and c.status == ConditionStatus.FALSE
    ]
    have = int((ctx.live_statefulset.get("spec") or {}).get("replicas") or 0)
    if refused and have == ctx.replicas:
        _condition(ctx, True, "Settled", f"the ring runs the {have} nodes spec.replicas asks for")
