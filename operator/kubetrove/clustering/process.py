"""process: the per-cluster loop, observe -> decide -> act, once per interval (one kopf daemon each)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kubetrove.clustering.act import Aborted, act
from kubetrove.clustering.decide import Compare, Decision, decide
from kubetrove.clustering.observe import DownClock, build_view, gather
from kubetrove.clustering.ops import ClusterRecord, MemberOps

log = logging.getLogger(__name__)


@dataclass
class Loop:
    """Everything one cluster's loop needs; ``clock`` is its only memory between cycles."""

    ops: MemberOps
    record: ClusterRecord
    compare: Compare
    interval: float = 1.0
    wait_timeout: float = 30.0
    clock: DownClock = field(default_factory=DownClock)

    async def cycle(self, now: float | None = None) -> Decision:
        """One observe -> decide -> act round; returns the decision taken."""
        now = time.monotonic() if now is None else now
        pods, base = await self.record.load()
        statuses = await gather(self.ops, pods, base.current_primary)
        view = build_view(pods, statuses, self.clock, now, base)
        decision = decide(view, self.compare)
        await self.record.write_observation(decision.state.value, statuses, decision.errant, decision.reasons)
        try:
            await act(decision, view, self.ops, self.record, self.compare, self.wait_timeout, self.clock, now)
        except Aborted as e:
            log.warning("cycle aborted safely: %s", e)
        await self.record.grow_storage(statuses, self.ops.volume)  # after acting: failover never waits on it
        return decision

    async def run(self, stopped: asyncio.Event) -> None:
        """Cycle until ``stopped`` is set; an unexpected error ends one cycle, never the loop."""
        await repeat(self.cycle, self.interval, stopped)


async def repeat(cycle: Callable[[], Awaitable[object]], interval: float, stopped: asyncio.Event) -> None:
    """Run ``cycle`` every ``interval`` seconds until ``stopped``; an error ends one cycle, never the loop."""
    while not stopped.is_set():
        try:
            await cycle()
        except Exception:
            log.exception("clustering cycle failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), timeout=interval)
