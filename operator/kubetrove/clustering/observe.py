"""observe: one ``ClusterView`` from the members' agents, replicas first and the primary last (I5)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kubetrove.agent.protocol import Status
from kubetrove.clustering.ops import MemberUnreachable, StatusOps
from kubetrove.clustering.snapshot import ClusterView, MemberView, Role


@dataclass
class DownClock:
    """Since when each member has been down, in the loop's monotonic seconds (the only state kept)."""

    since: dict[str, float] = field(default_factory=dict)

    def down_for(self, pod: str, up: bool, now: float) -> float:
        """Seconds ``pod`` has been down as of ``now`` (0 when up); remembers the first failure."""
        if up:
            self.since.pop(pod, None)
            return 0.0
        return now - self.since.setdefault(pod, now)


def pod_of(host: str | None) -> str | None:
    """The pod name in a member host name ("db-1.db-headless.ns.svc" -> "db-1")."""
    return host.split(".", 1)[0] if host else None


def member_view(pod: str, index: int, status: Status | None, down_for: float) -> MemberView:
    """A ``MemberView`` from one agent reply (None: unreachable)."""
    if status is None:
        return MemberView(pod=pod, index=index, reachable=False, down_for_seconds=down_for)
    # The wire's ``healthy`` means "up AND replicating as its role requires" (api/status.py): a replica
    # whose IO thread was stopped (I3) or is reconnecting to a dead primary reports False. decide's
    # ``healthy`` means "the engine answers queries", which an answered /v1/status already proves
    # (drivers answer 503 otherwise); replication state travels in ``replication_running``.
    return MemberView(
        pod=pod,
        index=index,
        reachable=True,
        healthy=True,
        role=Role(status.role.value),
        read_only=status.read_only,
        position=status.position,
        received_position=status.received_position,
        source=pod_of(status.source_host),
        replication_running=status.replication_running,
        down_for_seconds=down_for,
        diverged=status.diverged,
        rebuilding=status.rebuilding,
        rebuild_error=status.rebuild_error,
    )


async def gather(ops: StatusOps, pods: Sequence[str], primary: str | None) -> dict[str, Status | None]:
    """Every member's status, the recorded primary LAST (invariant I5); None for an unreachable one."""
    ordered = [p for p in pods if p != primary] + [p for p in pods if p == primary]
    found: dict[str, Status | None] = {}
    for pod in ordered:  # sequential on purpose: the order is the point
        try:
            found[pod] = await ops.status(pod)
        except MemberUnreachable:
            found[pod] = None
    return found


async def gather_at_once(ops: StatusOps, pods: Sequence[str]) -> dict[str, Status | None]:
    """Every member's status, all asked at once; None for an unreachable one.

    For a set that elects its own primary (the membership loop), where nothing depends on the order:
    a cycle then lasts as long as the slowest member, not the sum. A dead member's probe runs into its
    timeout (2 s), and asked in turn it delayed seeing a new primary by that much after every election.
    """

    async def one(pod: str) -> Status | None:
        try:
            return await ops.status(pod)
        except MemberUnreachable:
            return None

    replies = await asyncio.gather(*(one(pod) for pod in pods))
    return dict(zip(pods, replies, strict=True))


def build_view(
    pods: Sequence[str],
    statuses: Mapping[str, Status | None],
    clock: DownClock,
    now: float,
    base: ClusterView,
) -> ClusterView:
    """The frozen view of this cycle: ``base`` carries spec/status fields, members come from ``statuses``."""
    members = []
    for index, pod in enumerate(pods):
        st = statuses.get(pod)
        up = st is not None  # answered: the engine is up (see member_view)
        members.append(member_view(pod, index, st, clock.down_for(pod, up, now)))
    return ClusterView(
        members=tuple(members),
        current_primary=base.current_primary,
        wanted_primary=base.wanted_primary,
        automatic_failover=base.automatic_failover,
        detection_seconds=base.detection_seconds,
        ack_count=base.ack_count,
        errant=base.errant,
        rejoin_rewinds=base.rejoin_rewinds,
        rebuild_errant=base.rebuild_errant,
    )
