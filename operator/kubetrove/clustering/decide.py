"""decide: the pure HA brain. A frozen ``ClusterView`` in, a named state and one ``Decision`` out.

This module is the written-down reasoning of kubetrove's failover (docs/clustering.md has the prose). It
has no I/O, no clock and no randomness: every scenario is a literal ``ClusterView`` in a unit test.
It serves the engines whose HA mode is "operator-primary" (MySQL, MariaDB, PostgreSQL); MongoDB elects
its own primary and Cassandra has none, so their loops only observe and report.

Invariants (each one is relied on by ``act`` and checked by tests):

I1  status.primary is the single source of truth for who is primary. ``act`` writes it BEFORE it promotes
    and relabels, and only after the candidate has applied everything it received; so a restart of the
    operator mid-failover finds status.primary pointing at a member that holds every acknowledged write,
    and the next cycle simply finishes the job (CONFIGURE).
I2  Never promote a member that may lack an acknowledged write. A commit is acknowledged only after
    ``ack_count`` replicas received it (lossless semi-sync AFTER_SYNC / synchronous_standby_names ANY n).
    Replication streams are ordered, so the replica that received the most holds every write any
    replica received. That replica is known only if fewer than ``ack_count`` replicas are unknown
    (unreachable): with u unknown replicas and u >= ack_count, an acknowledged write may live only on
    them. Then we stay LOST and say why, rather than guess (no split brain, no lost write).
I3  Before ranking, ``act`` stops replication on every replica (MOCO's "stop IO thread everywhere"), so
    an old primary that is alive but unreachable to us cannot gather new acknowledgements: its clients
    block instead of being told "committed". Ranking then reads positions that no longer move.
I4  Positions are only partially ordered (MySQL GTID sets). A candidate must be >= every other candidate;
    INCOMPARABLE is never treated as EQUAL. Two incomparable top candidates -> LOST.
I5  A member holding transactions the primary never had (errant) is never a candidate, never pointed at
    the primary, never in the read-only Service. It is reported (status.errantMembers + Warning Event)
    and fixed by a rebuild. ``observe`` reads replicas BEFORE the primary, so a replica ahead of the
    primary's observed position cannot be an artefact of timing: GREATER means errant too. The mark is
    sticky (status.errantMembers) and is lifted only when the member was visibly rebuilt: it holds no
    transaction at all (a new, empty data directory), or it streams from the primary with a position
    at or behind the primary's (a fresh clone); a quarantined member has its replication stopped, so it
    cannot look like the latter. Where the engine's rejoin rewinds (PostgreSQL's pg_rewind,
    ``ClusterView.rejoin_rewinds``), being ahead is not errant: only a failed rewind (``diverged``) is.
I6  Ties are broken by pod index, so the same view always yields the same decision.
I7  A rebuild discards only what the primary lacks, never an acknowledged write. It is asked for
    (``Decision.rebuild``) only where the engine can re-provision a member from a donor and the spec
    allows it (``ClusterView.rebuild_errant``), only for a member quarantined in an earlier cycle (I5:
    its replication stopped, out of the Services, never a candidate), only while the primary is up and
    writable and the cycle does not switch over: the primary is the donor, and it holds every
    acknowledged write (I1, I2; lossless semi-sync), so the rebuilt member holds exactly a prefix of the
    primary's history. One member per
    cycle, never one whose rebuild is running or just failed (the agent's back-off). The agent names
    what is discarded (MySQL: ``GTID_SUBTRACT(own, donor's)``) before it touches anything and refuses a
    writable member; ``act`` records it (status.rebuilds and a Warning Event). The errant mark is lifted
    by I5's rule only: once the member streams from the primary at or behind its position.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from kubetrove.clustering.snapshot import ClusterView, MemberView, Role
from kubetrove.datastores.base import Ordering

Compare = Callable[[str, str], Ordering]


class State(enum.StrEnum):
    """The named cluster states (docs/clustering.md, "Possible states")."""

    BOOTSTRAP = "Bootstrap"  # no primary recorded yet
    HEALTHY = "Healthy"  # primary writable, every other member replicating from it
    DEGRADED = "Degraded"  # primary fine, some member is not (down, not replicating, errant)
    SWITCHOVER = "Switchover"  # spec.primary names another eligible member
    PRIMARY_DOWN = "PrimaryDown"  # primary unreachable, detection threshold not reached yet
    FAILOVER = "Failover"  # primary down past the threshold and a safe candidate exists
    LOST = "Lost"  # primary down and no safe candidate (or failover disabled): wait, say why


class Action(enum.StrEnum):
    NONE = "None"
    BOOTSTRAP = "Bootstrap"  # make ``target`` the first primary, the rest its replicas
    CONFIGURE = "Configure"  # make the primary writable, repoint ``configure`` members at it
    FAILOVER = "Failover"  # replace the failed primary by ``target``
    SWITCHOVER = "Switchover"  # hand the primary role from ``primary`` to ``target``


@dataclass(frozen=True)
class Decision:
    state: State
    action: Action = Action.NONE
    primary: str | None = None  # the primary the decision starts from
    target: str | None = None  # the new primary for BOOTSTRAP / FAILOVER / SWITCHOVER
    configure: tuple[str, ...] = ()  # members to (re)point at the primary (CONFIGURE)
    errant: tuple[str, ...] = ()  # every member known to hold errant transactions
    rebuild: tuple[str, ...] = ()  # quarantined members to re-provision from ``primary`` now (I7)
    reasons: tuple[str, ...] = ()  # human-readable, for conditions and Events


def decide(view: ClusterView, compare: Compare) -> Decision:
    """The state of ``view`` and the one action to take this cycle."""
    if view.current_primary is None or view.member(view.current_primary) is None:
        return _bootstrap(view, compare)
    primary = view.member(view.current_primary)
    assert primary is not None
    if not _is_up(primary):
        return _primary_down(view, primary, compare)
    return _primary_up(view, primary, compare)


def _is_up(m: MemberView) -> bool:
    return m.reachable and m.healthy


def _follows(m: MemberView, primary: MemberView) -> bool:
    """``m`` is a replica streaming from ``primary`` (configured, nothing to repoint)."""
    return m.role is Role.REPLICA and m.source == primary.pod and m.replication_running


def _order(a: str | None, b: str | None, compare: Compare) -> Ordering:
    """Compare optional positions: no position is the empty position (a fresh server)."""
    if a is None or b is None:
        if a == b:
            return Ordering.EQUAL
        return Ordering.LESS if a is None else Ordering.GREATER
    return compare(a, b)


def rank(candidates: Sequence[MemberView], compare: Compare) -> tuple[MemberView | None, str]:
    """The member that holds everything every other candidate holds (I4, I6), or None and why not."""
    best: MemberView | None = None
    for m in sorted(candidates, key=lambda m: m.index):
        if best is None:
            best = m
            continue
        order = _order(m.best_position, best.best_position, compare)
        if order is Ordering.GREATER:
            best = m
        elif order is Ordering.INCOMPARABLE:
            return None, f"positions of {best.pod} and {m.pod} are incomparable (diverged histories)"
    if best is None:
        return None, "no candidate is reachable and healthy"
    # The winner must dominate every candidate, not just the ones seen after it became best.
    for m in candidates:
        if _order(best.best_position, m.best_position, compare) in (Ordering.LESS, Ordering.INCOMPARABLE):
            return None, f"positions of {best.pod} and {m.pod} are incomparable (diverged histories)"
    return best, ""


def _errant(view: ClusterView, primary: MemberView, compare: Compare) -> tuple[str, ...]:
    """Members known errant: already quarantined, or holding what the (observed-last) primary lacks (I5)."""
    found = {pod for pod in view.errant if not _rebuilt(view.member(pod), primary, compare)}
    for m in view.members:
        if m.pod != primary.pod and m.reachable and m.diverged:
            found.add(m.pod)  # refused by its source: diverged below the positions' summary
            continue
        if m.pod == primary.pod or not m.reachable or m.position is None or primary.position is None:
            continue
        if view.rejoin_rewinds:
            # PostgreSQL: an ex-primary's WAL beyond the new primary was never acknowledged (synchronous
            # replication) and its rejoin rewinds it away; a failed rewind shows as ``diverged`` above.
            # Judged by position alone, an ex-primary back a moment before the new primary's next write
            # (its shutdown checkpoint ahead) was quarantined for good, a rebuild for nothing.
            continue
        if compare(m.position, primary.position) in (Ordering.GREATER, Ordering.INCOMPARABLE):
            found.add(m.pod)
    return tuple(sorted(found))


def _rebuilt(m: MemberView | None, primary: MemberView, compare: Compare) -> bool:
    """True when a member marked errant visibly holds nothing of its own any more (I5)."""
    if m is None or not m.reachable or m.diverged or m.rebuilding:
        return False  # a clone in progress shows an empty gtid_executed: not rebuilt yet (I7)
    if not m.position:
        return True  # an empty data directory: no transaction at all, errant or not
    return (
        m.role is Role.REPLICA
        and m.source == primary.pod
        and m.replication_running
        and primary.position is not None
        and compare(m.position, primary.position) in (Ordering.LESS, Ordering.EQUAL)
    )


def _bootstrap(view: ClusterView, compare: Compare) -> Decision:
    # The agent reports a writable server with no connected replica as "standalone", so writability
    # (not the role) is what marks a primary. A fresh cluster has several writable members: no adoption.
    writable = [m for m in view.members if _is_up(m) and not m.read_only and m.role is not Role.REPLICA]
    if len(writable) == 1:
        # status.primary was lost (the CR was recreated) but one member acts as primary: adopt it.
        return Decision(State.BOOTSTRAP, Action.BOOTSTRAP, target=writable[0].pod, reasons=("adopting",))
    down = [m.pod for m in view.members if not _is_up(m)]
    if down:
        # Any member may hold the newest data; choosing without it could drop writes (I2).
        return Decision(State.BOOTSTRAP, reasons=(f"waiting for members to start: {', '.join(down)}",))
    best, why = rank(view.members, compare)
    if best is None:
        return Decision(State.LOST, reasons=(f"cannot choose a first primary: {why}",))
    return Decision(State.BOOTSTRAP, Action.BOOTSTRAP, target=best.pod)


def _primary_down(view: ClusterView, primary: MemberView, compare: Compare) -> Decision:
    base = Decision(State.PRIMARY_DOWN, primary=primary.pod, errant=tuple(sorted(view.errant)))
    if primary.down_for_seconds < view.detection_seconds:
        return replace(
            base, reasons=(f"primary {primary.pod} unreachable for {primary.down_for_seconds:g}s",)
        )
    if not view.automatic_failover:
        return replace(
            base, state=State.LOST, reasons=(f"primary {primary.pod} is down; automatic failover is off",)
        )
    others = [m for m in view.members if m.pod != primary.pod]
    # Errant members count as unknown too: until quarantine stopped their replication they could have
    # acknowledged writes (semi-sync acks come from the IO thread), and they are never candidates (I5).
    unknown = [m.pod for m in others if not _is_up(m) or m.pod in view.errant]
    if len(unknown) >= view.ack_count:  # I2
        why = (
            f"primary {primary.pod} is down and {len(unknown)} replica(s) are unreachable "
            f"({', '.join(unknown)}); an acknowledged write may exist only there"
        )
        return replace(base, state=State.LOST, reasons=(why,))
    candidates = [m for m in others if _is_up(m) and m.pod not in view.errant]
    best, why = rank(candidates, compare)
    if best is None:
        return replace(
            base, state=State.LOST, reasons=(f"primary {primary.pod} is down; no safe candidate: {why}",)
        )
    return replace(base, state=State.FAILOVER, action=Action.FAILOVER, target=best.pod)


def _primary_up(view: ClusterView, primary: MemberView, compare: Compare) -> Decision:
    errant = _errant(view, primary, compare)
    base = Decision(State.HEALTHY, primary=primary.pod, errant=errant)
    wanted = view.wanted_primary
    if wanted and wanted != primary.pod:
        target = view.member(wanted)
        if target is None or not _is_up(target) or wanted in errant:
            why = f"switchover to {wanted} not possible: it is missing, down or errant"
            base = replace(base, reasons=(why,))
        elif _follows(target, primary):
            return replace(base, state=State.SWITCHOVER, action=Action.SWITCHOVER, target=wanted)
        else:
            # A target that does not stream from the primary (a rebuilt, empty member not yet repointed)
            # could never catch up: the switchover would fence the primary for wait_timeout and abort,
            # cycle after cycle. Configure repoints it first; the switchover follows once it streams.
            base = replace(
                base, reasons=(f"switchover to {wanted} waits until it replicates from the primary",)
            )
    configure = tuple(
        m.pod
        for m in view.members
        if m.pod != primary.pod and _is_up(m) and m.pod not in errant and not _follows(m, primary)
    )
    reasons = list(base.reasons)
    reasons += [f"{m.pod} is unreachable or unhealthy" for m in view.members if not _is_up(m)]
    reasons += [_errant_reason(view, pod, primary) for pod in errant]
    writable = primary.role is not Role.REPLICA and not primary.read_only
    if writable:  # I7 (a cycle that switches over returned above; a spec.primary naming the errant
        # member itself must not block its rebuild: that deadlocked an 8.0.31 cluster after a failover)
        base = replace(base, rebuild=_to_rebuild(view, errant))
    if not writable or configure:
        return replace(
            base, state=State.DEGRADED, action=Action.CONFIGURE, configure=configure, reasons=tuple(reasons)
        )
    if reasons:
        return replace(base, state=State.DEGRADED, reasons=tuple(reasons))
    return base


def _to_rebuild(view: ClusterView, errant: tuple[str, ...]) -> tuple[str, ...]:
    """The first member to re-provision from the (up, writable) primary this cycle, if any (I7)."""
    if not view.rebuild_errant:
        return ()
    for pod in errant:
        m = view.member(pod)
        if pod in view.errant and m is not None and _is_up(m) and not (m.rebuilding or m.rebuild_error):
            return (pod,)  # quarantined in an earlier cycle: replication stopped, out of the Services
    return ()


def _errant_reason(view: ClusterView, pod: str, primary: MemberView) -> str:
    m = view.member(pod)
    if m is not None and m.rebuilding:
        return f"{pod} holds errant transactions; being rebuilt from {primary.pod}"
    if m is not None and m.rebuild_error:
        return f"{pod} holds errant transactions; its rebuild failed: {m.rebuild_error}"
    if view.rebuild_errant:
        return f"{pod} holds errant transactions; it is rebuilt from the primary once quarantined"
    return f"{pod} holds errant transactions; rebuild it"
