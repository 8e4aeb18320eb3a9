"""Volume: a DatabaseInstance's member as its agent reports it: ``status.members``, the ``StorageLow``
condition and Event, the member's volume series, and storage autogrow (kubetrove/autogrow.py).

A DatabaseCluster's members are observed by its clustering loop (clustering/kube_record.py); an instance
has no loop, so this phase does the same through the same code (kubetrove/observation.py,
kubetrove/autogrow.py) whenever its status is refreshed: the status timer (300 s by default) and every
event of its StatefulSet, and with ``spec.storage.autogrow`` the autogrow timer (``run.observe_volume``,
60 s by default; docs/operations.md, "Autogrow"). Not on a reconcile: a spec change, or the operator's
restart resuming every resource, calls no agent for it.

One agent call while all is well: ``GET /v1/status`` (role, health, volume), short timeout, no retry.
When it fails (an engine stopped on a full disk answers 503) ``GET /v1/volume``, which needs no engine,
so a full disk is still measured and autogrow can grow it and restart the member. No pod yet: nothing
is observed and nothing written.

Ownership: on an instance this phase owns ``status.members``, ``status.storage`` and the conditions
``StorageLow`` and ``StorageAutogrow``. It writes them itself, when they changed (the volume figures
alone when the fill moved by a whole percent), with the resourceVersion it read, since the runner writes
``conditions`` whole too; what it wrote is put into ``ctx.status`` and ``ctx.previous_status``, so the
runner's write that follows carries it (and is skipped when nothing else changed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kubetrove import autogrow
from kubetrove.agent.protocol import Status, VolumeUsage
from kubetrove.api import conditions
from kubetrove.api.common import Condition
from kubetrove.api.resources import Parsed
from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s import events, ops
from kubetrove.k8s.pods import pod_ip
from kubetrove.k8s.port import Obj
from kubetrove.members import AgentCallError
from kubetrove.metrics import OperatorMetrics, PodSeries
from kubetrove.observation import (
    STORAGE_CONDITION,
    VolumeSeries,
    fill_moved,
    fill_of,
    member_status,
    same_members,
    same_storage,
    storage_condition,
    turned_low,
)
from kubetrove.reconcile.context import Context, member_pods
from kubetrove.reconcile.phases.report import parse_status
from kubetrove.render.names import ChildNames

OWNED = (STORAGE_CONDITION, autogrow.CONDITION)  # the conditions this phase writes on an instance


def volume_series(metrics: OperatorMetrics, parsed: Parsed[InstanceSpec]) -> VolumeSeries:
    """The instance's volume series (its one member's; the "cluster" label is the instance's name)."""
    ref = parsed.ref
    return VolumeSeries(metrics, PodSeries(ref.namespace, ref.name, frozenset({ChildNames(ref.name).pod(0)})))


async def _ask(ctx: Context, pod: Obj) -> tuple[Status | None, VolumeUsage | None]:
    """The member's status, else (it failed) its data volume alone; (None, None) when neither answered."""
    gateway = ctx.deps.members
    token = await gateway.token(ctx.namespace, ctx.parsed.ref.name)  # a refresh renders nothing
    name = pod["metadata"]["name"]
    if not token or not pod_ip(pod):
        return None, None
    url = gateway.url(ctx.namespace, pod)
    async with gateway.agents(token) as agents:
        try:
            return await agents.call(name, url, lambda a: a.status(), probe=True), None
        except AgentCallError as exc:
            ctx.logger.debug("status of %s: %s; asking its volume alone", name, exc.reason)
        try:
            return None, await agents.call(name, url, lambda a: a.volume(), probe=True)
        except AgentCallError as exc:
            ctx.logger.info("%s: its agent did not report the data volume: %s", name, exc.reason)
            return None, None


def _carry(own: Sequence[Condition], written: Sequence[Condition]) -> list[Condition]:
    """``own`` with the ``OWNED`` conditions as ``written`` says them (in place; new ones appended)."""
    mine = {c.type: c for c in written if c.type in OWNED}
    out = [
        mine.pop(c.type, c) if c.type in OWNED else c for c in own if c.type not in OWNED or c.type in mine
    ]
    return out + list(mine.values())


def _adopt(ctx: Context, raw: Obj) -> None:
    """What was just written becomes what the runner compares with (``previous_status``) and carries."""
    written = parse_status(raw)
    if written is None:
        return
    ctx.previous_status = written
    if ctx.status is not None:
        update: dict[str, Any] = {
            "conditions": _carry(ctx.status.conditions, written.conditions),
            "members": written.members,
            "storage": written.storage,
        }
        ctx.status = ctx.status.model_copy(update=update)


def _stored(ctx: Context) -> Obj:
    """The status as last read or written (wire form)."""
    return ctx.previous_status.to_wire() if ctx.previous_status else {}


async def _write(ctx: Context, build: Callable[[Obj], Obj | None]) -> bool:
    """A status write with the read resourceVersion (ops.update_status); True when something was written."""
    written = await ops.update_status(ctx.deps.kube, ctx.parsed.ref, build)
    if written is None:
        return False
    _adopt(ctx, written.get("status") or {})
    if ctx.write_precondition is not None:  # a refresh: its later write builds on this one
        ctx.write_precondition = str(written["metadata"]["resourceVersion"])
    return True


@dataclass
class InstanceRecord:
    """``autogrow.Record`` of a DatabaseInstance: its status (read-modify-write) and its Events."""

    ctx: Context

    async def write_storage(self, storage: Obj | None, condition: Obj | None, drop: bool = False) -> None:
        """status.storage and the StorageAutogrow condition, with the read resourceVersion."""
        stamp = conditions.stamp(self.ctx.deps.clock())
        await _write(
            self.ctx,
            lambda body: autogrow.storage_patch(body.get("status") or {}, storage, condition, drop, stamp),
        )

    async def event(self, reason: str, message: str, warning: bool = False) -> None:
        """An Event regarding the instance (action ``Autogrow``); a refusal is only logged."""
        ctx, deps = self.ctx, self.ctx.deps
        etype = events.EventType.WARNING if warning else events.EventType.NORMAL
        await events.post_quietly(
            deps.kube, ctx.parsed.ref, etype, reason, message, "Autogrow", ctx.logger, deps.reporting_instance
        )


async def _record(ctx: Context, wanted: list[Obj]) -> None:
    """status.members and StorageLow, written when they changed; the Warning Event when it turns True."""
    low = storage_condition(wanted, ctx.parsed.ref.generation)
    stamp = conditions.stamp(ctx.deps.clock())
    went_low: list[str] = []

    def build(body: Obj) -> Obj | None:
        status = body.get("status") or {}
        stored, conds = status.get("members") or [], list(status.get("conditions") or [])
        due = fill_moved(stored, wanted)
        if same_members(stored, wanted, due) and same_storage(conds, low, due):
            return None
        went_low[:] = [message] if (message := turned_low(conds, low)) else []
        patch: Obj = {"members": wanted}
        if low is not None:
            patch["conditions"] = conditions.put_wire(conds, [low], stamp)
        return patch

    if build({"status": _stored(ctx)}) is None:
        return  # nothing new against the status as read: no API call at all
    if await _write(ctx, build):
        for message in went_low:
            await InstanceRecord(ctx).event(STORAGE_CONDITION, message, warning=True)


async def volume(ctx: Context) -> None:
    """The Volume phase (DatabaseInstance only: a cluster's loop observes its members)."""
    if ctx.is_cluster:
        return
    name = ctx.names.pod(0)
    pods = await member_pods(ctx)
    pod = next((p for p in pods if p["metadata"]["name"] == name), None)
    if pod is None:
        return
    st, alone = await _ask(ctx, pod)
    # An agent that answered neither call reports nothing: no entry (rather than one saying only
    # "healthy: false", which would read as an engine known to be down), so readers fall back on the
    # Ready condition (kubectl trove list), and no stale figure stays for an alert to fire on.
    reported = (
        [] if st is None and alone is None else [member_status(name, st, volume=alone, replication=False)]
    )
    volume_series(ctx.deps.metrics, ctx.parsed).record(reported)
    await _record(ctx, reported)
    usage = st.volume if st is not None else alone
    fills = {name: fill_of(usage)} if usage is not None else {}
    record = InstanceRecord(ctx)
    storage = ctx.spec.storage
    await autogrow.grow(
        ctx.deps.kube, ctx.parsed.ref, record, storage, _stored(ctx), fills, {name: pod}, ctx.deps.clock()
    )
