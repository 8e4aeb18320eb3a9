"""The loop of an ENGINE-ELECTED set (MongoDB): observe -> plan (``membership``) -> record and ask.

Per cycle: every member's status through its agent, all at once (``observe.gather_at_once``), the
pure ``membership.plan``, then, in this order: ``status.primary`` (only when the set reports another
primary), the role labels, the membership call to the member the plan names, and the observation
(state, members, reasons, including why a membership call was refused). It never promotes or fences
(invariant M1).

The only memory between cycles is which primary last confirmed the membership complete for which pod
list (M4), forgotten after ``resync_seconds`` so that a change made behind kubetrove's back (a manual
``rs.reconfig``) is undone within that time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from kubetrove.agent.protocol import MembershipAction
from kubetrove.clustering.membership import Plan, plan
from kubetrove.clustering.observe import DownClock, build_view, gather_at_once
from kubetrove.clustering.ops import ClusterRecord, MembershipOps, MembershipRefused, MemberUnreachable
from kubetrove.clustering.process import repeat

log = logging.getLogger(__name__)

PRIMARY_CHANGED = "PrimaryChanged"
INITIATED = "ReplicaSetInitiated"
RECONFIGURED = "ReplicaSetReconfigured"
SWITCHOVER = "SwitchoverRequested"


@dataclass
class MembershipLoop:
    """One engine-elected cluster's loop; same lifecycle as ``process.Loop`` (``runner`` runs either)."""

    ops: MembershipOps
    record: ClusterRecord
    interval: float = 1.0
    resync_seconds: float = 60.0
    clock: DownClock = field(default_factory=DownClock)
    settled: tuple[str, tuple[str, ...], float] | None = None  # (primary, pods, when) confirmed complete

    def _settled_primary(self, pods: list[str], now: float) -> str | None:
        if self.settled is None:
            return None
        primary, for_pods, at = self.settled
        return primary if for_pods == tuple(pods) and now - at < self.resync_seconds else None

    async def cycle(self, now: float | None = None) -> Plan:
        """One observe -> plan -> record/ask round; returns the plan carried out."""
        now = time.monotonic() if now is None else now
        pods, base = await self.record.load()
        statuses = await gather_at_once(self.ops, pods)
        view = build_view(pods, statuses, self.clock, now, base)
        p = plan(view, self._settled_primary(pods, now))
        if p.primary is not None and p.primary != base.current_primary:
            await self.record.write_primary(p.primary)
            was = base.current_primary or "none"
            await self.record.event(PRIMARY_CHANGED, f"the replica set elected {p.primary} (was: {was})")
        if p.roles:
            await self.record.label_roles(p.roles)
        reasons = p.reasons
        if p.ask is not None:
            reasons += await self._ask(p, pods, now)
        if p.step_up is not None:
            reasons += await self._step_up(p.step_up)
        await self.record.write_observation(p.state.value, statuses, (), reasons)
        await self.record.grow_storage(statuses, self.ops.volume)
        return p

    async def _ask(self, p: Plan, pods: list[str], now: float) -> tuple[str, ...]:
        """Send the wanted membership to ``p.ask``; the reasons to report (empty: nothing pending)."""
        assert p.ask is not None
        try:
            reply = await self.ops.set_members(p.ask, pods)
        except (MemberUnreachable, MembershipRefused) as exc:
            log.info("membership call not done: %s", exc)
            return (f"membership not changed: {exc}",)
        if reply.action is MembershipAction.INITIATED:
            await self.record.event(INITIATED, f"created the replica set with {', '.join(reply.added)}")
        elif reply.action is MembershipAction.RECONFIGURED:
            change = [f"added {h}" for h in reply.added] + [f"removed {h}" for h in reply.removed]
            await self.record.event(RECONFIGURED, f"{'; '.join(change)} (config version {reply.version})")
        if not reply.complete:
            return ("membership change in progress: one member per reconfiguration",)
        if p.primary is not None:
            self.settled = (p.primary, tuple(pods), now)
        return ()

    async def _step_up(self, pod: str) -> tuple[str, ...]:
        """Ask ``pod`` to stand for election (spec.primary); the set votes, the next cycles record it."""
        try:
            await self.ops.step_up(pod)
        except (MemberUnreachable, MembershipRefused) as exc:
            log.info("step-up of %s not done: %s", pod, exc)
            return (f"switchover to {pod} not done yet: {exc}",)
        await self.record.event(SWITCHOVER, f"asked {pod} to stand for election (spec.primary)")
        return ()

    async def run(self, stopped: asyncio.Event) -> None:
        """Cycle until ``stopped`` is set; an unexpected error ends one cycle, never the loop."""
        await repeat(self.cycle, self.interval, stopped)
