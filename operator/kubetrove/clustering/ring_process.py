"""The loop of a ring of equals (Cassandra, ``HAMode.NO_PRIMARY``): observe and report, nothing else.

A ring has no primary to choose or follow: the nodes find each other through the seeds (the datastore
renders ordinal 0 as the seed) and every node serves reads and writes. kubetrove's part is to tell
the truth in ``status.members`` and the Replication condition: Healthy when every node's agent answers
and its node finished bootstrapping (``system.local.bootstrapped``), Degraded naming the others.
It never writes ``status.primary`` or role labels, and never calls anything but ``/v1/status``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kubetrove.agent.protocol import Status
from kubetrove.clustering.observe import gather
from kubetrove.clustering.ops import ClusterRecord, StatusOps
from kubetrove.clustering.process import repeat

HEALTHY, DEGRADED = "Healthy", "Degraded"


def ring_state(pods: Sequence[str], statuses: Mapping[str, Status | None]) -> tuple[str, tuple[str, ...]]:
    """(state, reasons) of the ring from each node's status (pure)."""
    reasons: list[str] = []
    for pod in pods:
        status = statuses.get(pod)
        if status is None:
            reasons.append(f"{pod} is unreachable")
        elif not status.healthy:
            reasons.append(f"{pod} has not joined the ring yet (bootstrap not completed)")
    return (DEGRADED if reasons else HEALTHY), tuple(reasons)


@dataclass
class RingLoop:
    """One ring's loop; same lifecycle as ``process.Loop`` (``runner`` runs either)."""

    ops: StatusOps
    record: ClusterRecord
    interval: float = 1.0

    async def cycle(self, now: float | None = None) -> str:
        """One observe -> report round; returns the state reported."""
        del now  # a ring keeps no clock: nothing here depends on how long a node has been down
        pods, base = await self.record.load()
        statuses = await gather(self.ops, pods, base.current_primary)
        state, reasons = ring_state(pods, statuses)
        await self.record.write_observation(state, statuses, (), reasons)
        return state

    async def run(self, stopped: asyncio.Event) -> None:
        """Cycle until ``stopped`` is set; an unexpected error ends one cycle, never the loop."""
        await repeat(self.cycle, self.interval, stopped)
