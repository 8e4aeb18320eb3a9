"""An in-memory replicated cluster: members with transaction sets, semi-sync acknowledgements, failures.

Positions are comma-joined sorted transaction names, ordered by set inclusion (like GTID sets), so the
``setcmp`` of test_decide applies. ``FakeOps`` implements ``MemberOps``; ``FakeRecord`` ``ClusterRecord``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from kubetrove.agent.protocol import RingNode, Role, Status, VolumeUsage
from kubetrove.clustering.ops import AskVolume, MemberUnreachable
from kubetrove.clustering.snapshot import ClusterView
from kubetrove.datastores.base import Ordering


def setcmp(a: str, b: str) -> Ordering:
    sa, sb = set(filter(None, a.split(","))), set(filter(None, b.split(",")))
    if sa == sb:
        return Ordering.EQUAL
    if sa < sb:
        return Ordering.LESS
    return Ordering.GREATER if sa > sb else Ordering.INCOMPARABLE


def fmt(s: set[str]) -> str:
    return ",".join(sorted(s))


@dataclass
class Member:
    pod: str
    alive: bool = True
    writable: bool = True
    role: Role = Role.STANDALONE
    source: str | None = None
    receiving: bool = False  # IO thread / WAL receiver running
    link_up: bool = True  # network from the source to this member
    executed: set[str] = field(default_factory=set)
    received: set[str] = field(default_factory=set)  # received but not applied yet


class FakeOps:
    """The members and what the loop may do to them; ``calls`` logs every call in order."""

    def __init__(self, pods: list[str], ack_count: int = 1) -> None:
        self.members = {p: Member(p) for p in pods}
        self.ack_count = ack_count
        self.calls: list[tuple[str, str]] = []
        self.fail_next: dict[str, int] = {}  # op name -> how many next calls raise MemberUnreachable
        self.acked: set[str] = set()  # every write a client was told is committed
        self.apply_on_wait = True
        self.volumes: dict[str, VolumeUsage] = {}  # GET /v1/volume (also while a member is down)

    def _get(self, pod: str, op: str) -> Member:
        self.calls.append((op, pod))
        if self.fail_next.get(op, 0) > 0:
            self.fail_next[op] -= 1
            raise MemberUnreachable(f"{op} {pod}: injected")
        m = self.members[pod]
        if not m.alive:
            raise MemberUnreachable(pod)
        return m

    # --- the client side of the simulation ---
    def write(self, tx: str) -> bool:
        """A client commit on the writable primary; True if acknowledged (semi-sync: ack_count receivers)."""
        primaries = [m for m in self.members.values() if m.alive and m.writable and m.role is Role.PRIMARY]
        if len(primaries) != 1:
            return False
        p = primaries[0]
        p.executed.add(tx)
        acks = 0
        for r in self.members.values():
            if r.alive and r.source == p.pod and r.receiving and r.link_up:
                r.received.add(tx)
                acks += 1
        if acks >= self.ack_count:
            self.acked.add(tx)
            return True
        return False

    def settle(self) -> None:
        """Replicas apply what they received (the SQL thread catches up)."""
        for m in self.members.values():
            m.executed |= m.received
            m.received = set()

    # --- MemberOps ---
    async def volume(self, pod: str) -> VolumeUsage | None:
        self._get(pod, "volume")
        return self.volumes.get(pod)

    async def status(self, pod: str) -> Status:
        m = self._get(pod, "status")
        return Status(
            engine="fake",
            version="1",
            role=m.role,
            read_only=not m.writable,
            healthy=True,
            position=fmt(m.executed),
            received_position=fmt(m.executed | m.received) if m.role is Role.REPLICA else None,
            source_host=f"{m.source}.h.ns.svc" if m.source else None,
            replication_running=m.receiving,
        )

    async def set_source(self, pod: str, source_pod: str) -> None:
        m = self._get(pod, "set_source")
        src = self.members[source_pod]
        if not (m.executed | m.received) <= src.executed:
            raise AssertionError(f"{pod} would diverge from {source_pod}")  # the loop must never do this
        m.role, m.source, m.writable, m.receiving = Role.REPLICA, source_pod, False, True
        m.received |= src.executed - m.executed  # catch up

    async def stop_replication(self, pod: str) -> None:
        self._get(pod, "stop_replication").receiving = False

    async def wait_for_position(self, pod: str, position: str, timeout_seconds: float) -> bool:
        m = self._get(pod, "wait_for_position")
        if self.apply_on_wait:
            m.executed |= m.received
            m.received = set()
        return set(filter(None, position.split(","))) <= m.executed

    async def promote(self, pod: str) -> None:
        m = self._get(pod, "promote")
        m.role, m.source, m.writable, m.receiving = Role.PRIMARY, None, True, False

    async def fence(self, pod: str) -> None:
        self._get(pod, "fence").writable = False

    async def rebuild(self, pod: str, source_pod: str) -> str:
        """A clone of ``source_pod`` that replicates from it at once; returns what ``pod`` alone held."""
        m = self._get(pod, "rebuild")
        src = self.members[source_pod]
        if m.writable:
            raise AssertionError(f"{pod} is writable: the loop must never rebuild it")
        discarded = (m.executed | m.received) - src.executed
        if discarded & self.acked:
            lost = discarded & self.acked
            raise AssertionError(f"rebuilding {pod} would discard acknowledged {lost}")  # I7
        m.executed, m.received = set(src.executed), set()
        m.role, m.source, m.receiving = Role.REPLICA, source_pod, True
        return fmt(discarded)


@dataclass
class FakeRecord:
    """status.primary, pod labels and Events, as the k8s adapter would keep them."""

    pods: list[str]
    base: ClusterView
    primary: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    events: list[tuple[str, str, bool]] = field(default_factory=list)
    errant: tuple[str, ...] = ()
    state: str = ""
    reasons: tuple[str, ...] = ()
    log: list[tuple[str, str]] | None = None  # shared with FakeOps.calls to check ordering
    members: dict[str, Status | None] = field(default_factory=dict)  # as last written
    ring: dict[str, RingNode] = field(default_factory=dict)  # each pod's node as the ring sees it
    rebuilds: dict[str, tuple[str, str]] = field(default_factory=dict)  # pod -> (source, discarded)
    grow_calls: int = 0  # grow_storage (autogrow itself is tested on the fake API server)

    async def load(self) -> tuple[list[str], ClusterView]:
        b = self.base
        view = replace(b, members=(), current_primary=self.primary, errant=frozenset(self.errant))
        return list(self.pods), view

    async def write_primary(self, primary: str) -> None:
        if self.log is not None:
            self.log.append(("write_primary", primary))
        self.primary = primary

    async def write_observation(
        self,
        state: str,
        members: Mapping[str, Status | None],
        errant: tuple[str, ...],
        reasons: tuple[str, ...],
        ring: Mapping[str, RingNode] | None = None,
    ) -> None:
        self.state, self.errant, self.reasons = state, errant, reasons
        self.members, self.ring = dict(members), dict(ring or {})

    async def label_roles(self, roles: Mapping[str, str]) -> None:
        self.labels.update(roles)

    async def grow_storage(self, members: Mapping[str, Status | None], ask: AskVolume) -> None:
        self.grow_calls += 1

    async def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((reason, message, warning))

    async def record_rebuild(self, pod: str, source: str, discarded: str) -> None:
        self.rebuilds[pod] = (source, discarded)
