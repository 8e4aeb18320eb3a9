"""The loop of a ring of equals (Cassandra, ``HAMode.NO_PRIMARY``): observe and report, nothing else.

A ring has no primary to choose or follow: the nodes find each other through the seeds (the datastore
renders ordinal 0 as the seed) and every node serves reads and writes. kubetrove's part is to tell
the truth in ``status.members`` and the Replication condition. Each agent reports its node's host id and
the ring as that node sees it (``nodetool status``: UN, DN, UJ...); a member's ring state is what the
OTHER reachable nodes see (a node always sees itself up), its tokens, load and host id what it says
itself (else what its peers last heard). Healthy when every pod's node is UN, its agent answers and it
finished bootstrapping; Degraded naming the others, and naming any node the ring still holds that is no
pod of this cluster (a replaced or removed node that was never taken out of the ring).
It never writes ``status.primary`` or role labels, and never calls anything but ``/v1/status``.

The only memory: each pod's host id as last reported by its own agent (``host_ids``), so a pod that is
down can still be found in its peers' views. After an operator restart a down pod is matched to the one
ring node no pod claims, when there is exactly one of each.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kubetrove.agent.protocol import RingNode, Status
from kubetrove.clustering.observe import gather
from kubetrove.clustering.ops import ClusterRecord, StatusOps
from kubetrove.clustering.process import repeat

HEALTHY, DEGRADED = "Healthy", "Degraded"
UP_NORMAL = "UN"
# nodetool status' two letters: Up/Down, then Normal/Leaving/Joining/Moving.
_UP_DOWN = {"U": "up", "D": "down"}
_STATE = {"N": "normal", "L": "leaving", "J": "joining", "M": "moving"}


def describe(state: str) -> str:
    """ "DN" -> "DN (down, normal)"."""
    if len(state) == 2 and state[0] in _UP_DOWN and state[1] in _STATE:
        return f"{state} ({_UP_DOWN[state[0]]}, {_STATE[state[1]]})"
    return state


def ring_members(
    pods: Sequence[str], statuses: Mapping[str, Status | None], host_ids: dict[str, str]
) -> tuple[dict[str, RingNode], list[RingNode]]:
    """(pod -> its node as the ring sees it, ring nodes that are no pod); learns ``host_ids`` (pure
    apart from that)."""
    for pod in pods:
        status = statuses.get(pod)
        if status is not None and status.host_id:
            host_ids[pod] = status.host_id
    views = {
        pod: {n.host_id: n for n in status.ring}
        for pod in pods
        if (status := statuses.get(pod)) is not None and status.ring is not None
    }
    seen = {hid: n for view in views.values() for hid, n in view.items()}
    claimed = {host_ids[p] for p in pods if p in host_ids}
    unknown = [p for p in pods if p not in host_ids and statuses.get(p) is None]
    strangers = [hid for hid in seen if hid not in claimed]
    if len(unknown) == 1 and len(strangers) == 1:  # after a restart: the one down pod is the one node
        host_ids[unknown[0]] = strangers[0]
        strangers = []
    members: dict[str, RingNode] = {}
    for pod in pods:
        hid = host_ids.get(pod)
        if hid is None or hid not in seen:
            continue
        others = [view[hid] for other, view in views.items() if other != pod and hid in view]
        own = views.get(pod, {}).get(hid)
        base = own or others[0]
        state = Counter(n.state for n in others).most_common(1)[0][0] if others else base.state
        members[pod] = base.model_copy(update={"state": state})
    return members, [seen[hid] for hid in strangers]


def ring_state(
    pods: Sequence[str],
    statuses: Mapping[str, Status | None],
    members: Mapping[str, RingNode] | None = None,
    strangers: Sequence[RingNode] = (),
) -> tuple[str, tuple[str, ...]]:
    """(state, reasons) of the ring from each node's status and the ring's view of it (pure)."""
    reasons: list[str] = []
    for pod in pods:
        status = statuses.get(pod)
        node = (members or {}).get(pod)
        if node is not None and node.state != UP_NORMAL:
            reasons.append(f"{pod} is {describe(node.state)} in the ring")
        elif status is None:
            reasons.append(f"{pod} is unreachable")
        elif not status.healthy:
            reasons.append(f"{pod} has not joined the ring yet (bootstrap not completed)")
    reasons += [
        f"node {n.address} (host id {n.host_id}, {describe(n.state)}) is in the ring but is no member"
        for n in strangers
    ]
    return (DEGRADED if reasons else HEALTHY), tuple(reasons)


@dataclass
class RingLoop:
    """One ring's loop; same lifecycle as ``process.Loop`` (``runner`` runs either)."""

    ops: StatusOps
    record: ClusterRecord
    interval: float = 1.0
    host_ids: dict[str, str] = field(default_factory=dict)  # pod -> host id, as its agent last said

    async def cycle(self, now: float | None = None) -> str:
        """One observe -> report round; returns the state reported."""
        del now  # a ring keeps no clock: nothing here depends on how long a node has been down
        pods, base = await self.record.load()
        statuses = await gather(self.ops, pods, base.current_primary)
        members, strangers = ring_members(pods, statuses, self.host_ids)
        state, reasons = ring_state(pods, statuses, members, strangers)
        await self.record.write_observation(state, statuses, (), reasons, ring=members)
        await self.record.grow_storage(statuses, self.ops.volume)
        return state

    async def run(self, stopped: asyncio.Event) -> None:
        """Cycle until ``stopped`` is set; an unexpected error ends one cycle, never the loop."""
        await repeat(self.cycle, self.interval, stopped)
