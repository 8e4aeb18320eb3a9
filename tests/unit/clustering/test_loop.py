"""The whole loop (observe -> decide -> act) against the in-memory cluster: failures, flapping, restarts.

The property every scenario checks: every acknowledged write survives on the primary the loop ends with.
"""

from __future__ import annotations

import pytest

from kubetrove.clustering.decide import Action, State
from kubetrove.clustering.ops import MemberUnreachable
from kubetrove.clustering.process import Loop
from kubetrove.clustering.snapshot import ClusterView
from tests.unit.clustering.fake import FakeOps, FakeRecord, setcmp

PODS = ["db-0", "db-1", "db-2"]


def make(ack_count: int = 1, **base: object) -> tuple[FakeOps, FakeRecord, Loop]:
    ops = FakeOps(PODS, ack_count=ack_count)
    view = ClusterView((), None, ack_count=ack_count, **base)  # type: ignore[arg-type]
    record = FakeRecord(PODS, view, log=ops.calls)
    return ops, record, Loop(ops, record, setcmp, wait_timeout=5)


async def bootstrapped(**base: object) -> tuple[FakeOps, FakeRecord, Loop]:
    ops, record, loop = make(**base)
    assert (await loop.cycle(now=0)).action is Action.BOOTSTRAP
    assert (await loop.cycle(now=1)).state is State.HEALTHY
    return ops, record, loop


def acked(ops: FakeOps, names: list[str]) -> list[str]:
    return [tx for tx in names if ops.write(tx)]


async def test_bootstrap_makes_db0_primary_and_labels_pods() -> None:
    ops, record, _ = await bootstrapped()
    assert record.primary == "db-0"
    assert record.labels == {"db-0": "primary", "db-1": "replica", "db-2": "replica"}
    assert ops.members["db-1"].source == "db-0"


async def test_a_label_the_bootstrap_could_not_write_is_written_by_a_quiet_cycle() -> None:
    # The pods did not exist yet when the bootstrap labelled them (their StatefulSet lagged): the real
    # record skips a missing pod, so nothing was written; the status already names the primary.
    _, record, loop = make()

    async def no_pods_yet(roles: object) -> None:
        return None

    real = record.label_roles
    record.label_roles = no_pods_yet  # type: ignore[method-assign]
    assert (await loop.cycle(now=0)).action is Action.BOOTSTRAP
    assert record.primary == "db-0" and record.labels == {}
    record.label_roles = real  # type: ignore[method-assign]
    assert (await loop.cycle(now=1)).action is Action.NONE
    assert record.labels == {"db-0": "primary", "db-1": "replica", "db-2": "replica"}


async def test_failover_keeps_every_acknowledged_write() -> None:
    ops, record, loop = await bootstrapped()
    ok = acked(ops, ["t1", "t2"])
    ops.members["db-2"].link_up = False  # db-2 falls behind; db-1 still acknowledges
    ok += acked(ops, ["t3", "t4"])
    assert ok == ["t1", "t2", "t3", "t4"]
    ops.members["db-0"].alive = False
    assert (await loop.cycle(now=10)).state is State.PRIMARY_DOWN  # detection starts
    d = await loop.cycle(now=16)
    assert (d.action, d.target) == (Action.FAILOVER, "db-1")
    assert record.primary == "db-1"
    assert set(ok) <= ops.members["db-1"].executed
    # status.primary is written before the promotion (I1), and replication was stopped first (I3).
    calls = ops.calls
    assert calls.index(("write_primary", "db-1")) < calls.index(("promote", "db-1"))
    assert calls.index(("stop_replication", "db-2")) < calls.index(("write_primary", "db-1"))
    assert ops.members["db-2"].source == "db-1"
    ops.members["db-2"].link_up = True
    assert ops.write("t5")  # writes continue on the new primary, acknowledged by db-2


async def test_flapping_primary_does_not_fail_over() -> None:
    ops, record, loop = await bootstrapped(detection_seconds=5)
    ops.members["db-0"].alive = False
    assert (await loop.cycle(now=10)).state is State.PRIMARY_DOWN
    ops.members["db-0"].alive = True
    assert (await loop.cycle(now=13)).state is State.HEALTHY
    ops.members["db-0"].alive = False
    # Down again: the detection clock restarts, so 3 s later it is still only PrimaryDown.
    assert (await loop.cycle(now=14)).state is State.PRIMARY_DOWN
    assert (await loop.cycle(now=17)).state is State.PRIMARY_DOWN
    assert record.primary == "db-0"


async def test_no_failover_while_an_acknowledging_replica_is_unreachable() -> None:
    ops, record, loop = await bootstrapped()
    ops.members["db-2"].link_up = False
    assert acked(ops, ["t1"]) == ["t1"]  # acknowledged by db-1 alone
    ops.members["db-0"].alive = False
    ops.members["db-1"].alive = False  # the only holder of t1 is gone
    d = await loop.cycle(now=100)
    d = await loop.cycle(now=110)
    assert d.state is State.LOST
    assert record.primary == "db-0"
    # db-1 returns: now failover is safe, and t1 survives.
    ops.members["db-1"].alive = True
    d = await loop.cycle(now=111)
    assert d.target == "db-1"
    assert "t1" in ops.members[record.primary or ""].executed


async def test_operator_restart_mid_failover_converges() -> None:
    ops, record, loop = await bootstrapped()
    ok = acked(ops, ["t1", "t2"])
    ops.members["db-0"].alive = False
    await loop.cycle(now=10)
    ops.fail_next["promote"] = 1  # the operator "dies" right after writing status.primary
    with pytest.raises(MemberUnreachable):
        await loop.cycle(now=20)
    assert record.primary == "db-1"
    assert ops.members["db-1"].writable is False
    fresh = Loop(ops, record, setcmp, wait_timeout=5)  # a new operator process: no memory
    d = await fresh.cycle(now=0)
    assert (d.state, d.action) == (State.DEGRADED, Action.CONFIGURE)
    assert (await fresh.cycle(now=1)).state is State.DEGRADED  # db-0 is still down
    assert ops.members["db-1"].writable
    assert set(ok) <= ops.members["db-1"].executed


async def test_old_primary_rejoins_as_replica_when_it_returns() -> None:
    ops, _record, loop = await bootstrapped()
    acked(ops, ["t1"])
    ops.members["db-0"].alive = False
    await loop.cycle(now=10)
    await loop.cycle(now=20)
    ops.write("t2")
    ops.members["db-0"].alive = True  # comes back writable, believing it is primary
    await loop.cycle(now=30)
    assert ops.members["db-0"].source == "db-1"
    assert not ops.members["db-0"].writable
    ops.settle()
    assert (await loop.cycle(now=31)).state is State.HEALTHY
    assert "t2" in ops.members["db-0"].executed


async def test_old_primary_with_unreplicated_writes_is_quarantined() -> None:
    ops, record, loop = await bootstrapped()
    ops.members["db-1"].link_up = ops.members["db-2"].link_up = False
    ops.write("lost")  # never acknowledged (no receiver): the client was not told "committed"
    ops.members["db-0"].alive = False
    await loop.cycle(now=10)
    await loop.cycle(now=20)
    ops.members["db-0"].alive = True
    d = await loop.cycle(now=30)
    assert d.errant == ("db-0",)
    assert record.labels["db-0"] == "errant"
    assert ("ErrantTransactions", "db-0 holds transactions the primary never had", True) in record.events
    assert ops.members["db-0"].source is None  # never repointed (it would diverge)


async def test_switchover_hands_over_without_losing_writes() -> None:
    ops, record, loop = await bootstrapped()
    ok = acked(ops, ["t1", "t2"])
    record.base = ClusterView((), None, wanted_primary="db-2")
    d = await loop.cycle(now=5)
    assert (d.action, d.target) == (Action.SWITCHOVER, "db-2")
    assert record.primary == "db-2"
    assert set(ok) <= ops.members["db-2"].executed
    assert ops.members["db-0"].source == "db-2"
    assert ops.write("t3")


async def test_switchover_aborts_and_restores_writes_when_target_lags() -> None:
    ops, record, loop = await bootstrapped()
    ops.apply_on_wait = False
    ops.members["db-2"].link_up = False
    acked(ops, ["t1"])
    record.base = ClusterView((), None, wanted_primary="db-2")
    await loop.cycle(now=5)
    assert record.primary == "db-0"
    assert ops.members["db-0"].writable  # writes given back
    assert record.events[-1][0] == "SwitchoverAborted"


@pytest.mark.parametrize("op", ["set_source", "status"])
async def test_partial_failures_heal_on_the_next_cycle(op: str) -> None:
    ops, record, loop = make()
    await loop.cycle(now=0)
    ops.fail_next[op] = 1
    await loop.cycle(now=1)
    for t in range(2, 5):
        await loop.cycle(now=t)
    assert record.state == State.HEALTHY.value


async def test_old_primary_with_unreplicated_writes_is_rebuilt_from_the_new_primary() -> None:
    """I7: quarantined first, rebuilt the next cycle; what only it held is named, then gone."""
    ops, record, loop = await bootstrapped(rebuild_errant=True)
    acked(ops, ["t1"])
    ops.settle()
    ops.members["db-1"].link_up = ops.members["db-2"].link_up = False
    assert not ops.write("lost")  # never acknowledged
    ops.members["db-0"].alive = False
    await loop.cycle(now=10)
    await loop.cycle(now=20)
    ops.members["db-0"].alive = True
    d = await loop.cycle(now=30)
    assert (d.errant, d.rebuild) == (("db-0",), ())  # quarantined this cycle, rebuilt the next
    d = await loop.cycle(now=31)
    assert d.rebuild == ("db-0",)
    assert ops.calls.index(("fence", "db-0")) < ops.calls.index(("rebuild", "db-0"))
    assert record.rebuilds == {"db-0": ("db-1", "lost")}
    assert any(r == "MemberRebuilding" and "discarded: lost" in m for r, m, _ in record.events)
    ops.settle()
    d = await loop.cycle(now=32)
    assert (d.state, d.errant) == (State.HEALTHY, ())
    assert "lost" not in ops.members["db-0"].executed and "t1" in ops.members["db-0"].executed
    assert record.labels["db-0"] == "replica"
