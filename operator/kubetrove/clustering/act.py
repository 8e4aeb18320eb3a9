"""act: carry out one ``Decision`` through ``MemberOps``, in the order the invariants demand.

Every step is idempotent and every abort leaves the cluster in a state the next cycle repairs: a cycle
that dies half-way (operator restart, a member vanishing) is finished by the next decide/act round.
docs/clustering.md ("Failover, step by step") is the prose of this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kubetrove.clustering.decide import Action, Compare, Decision, decide
from kubetrove.clustering.observe import DownClock, build_view, gather
from kubetrove.clustering.ops import ClusterRecord, MemberOps, MemberUnreachable, RebuildRefused
from kubetrove.clustering.snapshot import ClusterView, Role

log = logging.getLogger(__name__)

PRIMARY, REPLICA, ERRANT = "primary", "replica", "errant"


class Aborted(Exception):
    """The action stopped safely before its point of no return; the next cycle decides again."""


async def act(
    d: Decision,
    view: ClusterView,
    ops: MemberOps,
    record: ClusterRecord,
    compare: Compare,
    wait_timeout: float,
    clock: DownClock,
    now: float,
) -> None:
    """Carry out ``d`` (decided on ``view``)."""
    if d.action is Action.BOOTSTRAP and d.target:
        await _make_primary(d.target, view, ops, record, d.errant)
        await record.event("PrimaryElected", f"{d.target} is the primary")
    elif d.action is Action.CONFIGURE and d.primary:
        await _configure(d.primary, d.configure, view, ops, record, d.errant)
    elif d.action is Action.FAILOVER and d.primary:
        await _failover(d.primary, view, ops, record, compare, wait_timeout, clock, now)
    elif d.action is Action.SWITCHOVER and d.primary and d.target:
        await _switchover(d.primary, d.target, view, ops, record, wait_timeout, d.errant)
    elif d.action is Action.NONE and d.primary:
        # The labels again, every quiet cycle (a no-op when they are set): a label the action's cycle
        # could not write (the pod did not exist yet: its StatefulSet lagged, seen in CI) is written now,
        # and the rw Service, which selects on it, finds its primary.
        await record.label_roles(_roles(view, d.primary, d.errant))
    await _quarantine(d, view, ops, record)
    if d.primary:
        await _rebuild(d.primary, d.rebuild, ops, record)


async def _rebuild(primary: str, pods: Iterable[str], ops: MemberOps, record: ClusterRecord) -> None:
    """Re-provision quarantined members from the primary (I7); what each discards goes to status + Event."""
    for pod in pods:
        try:
            await ops.fence(pod)  # started fenced; an ex-primary back before its fence must not stay writable
            discarded = await ops.rebuild(pod, primary)
        except MemberUnreachable:
            log.info("rebuild: %s unreachable, skipped", pod)
            continue
        except RebuildRefused as exc:
            await record.event("RebuildRefused", str(exc), True)
            continue
        await record.record_rebuild(pod, primary, discarded)
        await record.event(
            "MemberRebuilding",
            f"{pod} is re-provisioned from the primary {primary}; the transactions only it held are"
            f" discarded: {discarded or 'none'}",
            True,
        )


async def _quarantine(d: Decision, view: ClusterView, ops: MemberOps, record: ClusterRecord) -> None:
    """Newly found errant members leave the Services (label) and are reported once (I5); members whose
    mark was lifted (rebuilt, streaming from the primary) return to the read-only Service."""
    lifted = sorted(pod for pod in view.errant if pod not in d.errant and pod != d.primary)
    if lifted and d.primary:
        await record.label_roles(dict.fromkeys(lifted, REPLICA))
        for pod in lifted:
            await record.event("ErrantCleared", f"{pod} holds nothing the primary {d.primary} lacks any more")
    new = [pod for pod in d.errant if pod not in view.errant]
    if not new:
        return
    await record.label_roles(dict.fromkeys(new, ERRANT))
    # An errant member must take and acknowledge nothing more: fenced, so an ex-primary back from a
    # partition (writable, its clients waiting for acknowledgements no replica will send) ends those
    # sessions instead of acknowledging them when semi-sync's timeout expires; and an errant replica
    # stops acknowledging semi-sync writes: a write acked only by a member that can never be promoted
    # would be lost at the next failover (docs/clustering.md, I2, I5 and "Demoting a primary").
    await _quietly(new, "fence", ops)
    await _quietly(new, "stop_replication", ops)
    for pod in new:
        await record.event("ErrantTransactions", f"{pod} holds transactions the primary never had", True)


async def _quietly(pods: Iterable[str], op: str, ops: MemberOps) -> None:
    """Run ``op`` on each pod, skipping members that are unreachable (they are handled when they return)."""
    for pod in pods:
        try:
            await getattr(ops, op)(pod)
        except MemberUnreachable:
            log.info("%s: %s unreachable, skipped", op, pod)


def _roles(view: ClusterView, primary: str, errant: Iterable[str]) -> dict[str, str]:
    bad = set(errant)
    return {m.pod: PRIMARY if m.pod == primary else ERRANT if m.pod in bad else REPLICA for m in view.members}


async def _repoint(primary: str, pods: Iterable[str], ops: MemberOps) -> None:
    for pod in pods:
        try:
            await ops.set_source(pod, primary)
        except MemberUnreachable:
            log.info("repoint: %s unreachable, skipped", pod)


async def _make_primary(
    target: str, view: ClusterView, ops: MemberOps, record: ClusterRecord, errant: tuple[str, ...]
) -> None:
    """Record, promote, relabel, repoint: the tail shared by bootstrap, failover and switchover (I1 order)."""
    await record.write_primary(target)
    await ops.promote(target)
    await record.label_roles(_roles(view, target, errant))
    others = [m.pod for m in view.members if m.pod != target and m.pod not in errant and m.reachable]
    await _repoint(target, others, ops)


async def _configure(
    primary: str,
    pods: tuple[str, ...],
    view: ClusterView,
    ops: MemberOps,
    record: ClusterRecord,
    errant: tuple[str, ...],
) -> None:
    p = view.member(primary)
    if p is not None and (p.read_only or p.role is Role.REPLICA):
        await ops.promote(primary)
    await _repoint(primary, pods, ops)
    await record.label_roles(_roles(view, primary, errant))


async def _failover(
    old: str,
    view: ClusterView,
    ops: MemberOps,
    record: ClusterRecord,
    compare: Compare,
    wait_timeout: float,
    clock: DownClock,
    now: float,
) -> None:
    await _quietly([old], "fence", ops)  # 1. if it is alive at all, it stops taking writes
    replicas = [m.pod for m in view.members if m.pod != old]
    await _quietly(replicas, "stop_replication", ops)  # 2. I3: no new acknowledgements anywhere
    # 3. Positions are frozen now: decide again on a fresh view; only that decision may promote.
    pods = [m.pod for m in view.members]
    fresh = build_view(pods, await gather(ops, pods, old), clock, now, view)
    again = decide(fresh, compare)
    if again.action is not Action.FAILOVER or again.target is None:
        await record.event("FailoverAborted", f"re-check after stopping replication: {again.state}", True)
        raise Aborted(str(again.reasons))
    target = fresh.member(again.target)
    assert target is not None
    want = target.best_position
    # 4. The candidate applies everything it received before anyone calls it primary.
    if want is not None and not await ops.wait_for_position(target.pod, want, wait_timeout):
        await record.event("FailoverAborted", f"{target.pod} did not apply {want} in {wait_timeout:g}s", True)
        raise Aborted("candidate did not catch up")
    await _make_primary(target.pod, fresh, ops, record, again.errant)  # 5-7
    await record.event("FailoverSucceeded", f"primary {old} replaced by {target.pod}", True)


async def _switchover(
    old: str,
    target: str,
    view: ClusterView,
    ops: MemberOps,
    record: ClusterRecord,
    wait_timeout: float,
    errant: tuple[str, ...],
) -> None:
    await ops.fence(old)  # the write gap starts here
    position = (await ops.status(old)).position
    if position is not None and not await ops.wait_for_position(target, position, wait_timeout):
        await ops.promote(old)  # give writes back to the old primary: nothing changed hands
        await record.event(
            "SwitchoverAborted", f"{target} did not catch up with {old} in {wait_timeout:g}s", True
        )
        raise Aborted("switchover target did not catch up")
    await _make_primary(target, view, ops, record, errant)
    await record.event("SwitchoverSucceeded", f"primary {old} handed over to {target}")
