"""Random histories of the whole loop against the in-memory cluster: writes, SIGKILLs, restarts, broken
links, with the automatic rebuild on (I7). Seeded, so a failure names its seed and replays exactly.

What must hold at every step: no rebuild discards an acknowledged write (``FakeOps.rebuild`` asserts it),
no member is pointed at a source it diverged from (``FakeOps.set_source`` asserts it), and after every
failover the new primary holds every acknowledged write (I2). At the end, once everything is healed:
one primary, Healthy, every member holding every acknowledged write, nothing errant left.
"""

from __future__ import annotations

import random

import pytest

from kubetrove.agent.protocol import Role
from kubetrove.clustering.decide import Action, State
from kubetrove.clustering.process import Loop
from kubetrove.clustering.snapshot import ClusterView
from tests.unit.clustering.fake import FakeOps, FakeRecord, Member, setcmp

PODS = ["db-0", "db-1", "db-2"]


def restart(m: Member) -> None:
    """The engine starts again: a cluster member starts fenced (read_only in its config); a replica
    resumes replicating, an ex-primary has no replication configured."""
    m.alive = True
    if m.role is not Role.REPLICA:
        m.role, m.writable, m.receiving = Role.STANDALONE, False, False


def catch_up(ops: FakeOps) -> None:
    """Replication streams what a connected replica missed (the fake only delivers at write time)."""
    for m in ops.members.values():
        src = ops.members.get(m.source or "")
        if m.alive and m.receiving and m.link_up and src is not None and src.alive:
            m.received |= src.executed - m.executed
    ops.settle()


@pytest.mark.parametrize("seed", range(60))
async def test_random_histories_never_lose_an_acknowledged_write(seed: int) -> None:
    rng = random.Random(seed)
    ops = FakeOps(PODS)
    record = FakeRecord(PODS, ClusterView((), None, detection_seconds=3.0, rebuild_errant=True))
    loop = Loop(ops, record, setcmp, wait_timeout=5)
    now = 0.0
    tx = 0
    for _ in range(80):
        event = rng.random()
        members = list(ops.members.values())
        if event < 0.45:
            for _ in range(rng.randint(1, 3)):
                tx += 1
                ops.write(f"t{tx}")
        elif event < 0.52:
            victim = rng.choice([m for m in members if m.alive] or members)
            victim.alive = False  # SIGKILL
        elif event < 0.65:
            dead = [m for m in members if not m.alive]
            if dead:
                restart(rng.choice(dead))
        elif event < 0.72:
            rng.choice(members).link_up = False
        elif event < 0.85:
            rng.choice(members).link_up = True
        else:
            catch_up(ops)
        now += 1.0
        decision = await loop.cycle(now=now)
        if decision.action is Action.FAILOVER and record.primary is not None:
            primary = ops.members[record.primary]
            assert ops.acked <= primary.executed | primary.received, f"seed {seed}: lost on failover"

    # Heal everything and let the loop converge.
    for m in ops.members.values():
        m.link_up = True
        if not m.alive:
            restart(m)
    for _ in range(30):
        now += 1.0
        decision = await loop.cycle(now=now)
        catch_up(ops)
        if decision.state is State.HEALTHY and not record.errant:
            break
    assert (decision.state, record.errant) == (State.HEALTHY, ()), (seed, record.reasons)
    assert record.primary is not None
    for m in ops.members.values():
        assert ops.acked <= m.executed, (seed, m.pod, ops.acked - m.executed)
    assert [m.pod for m in ops.members.values() if m.writable] == [record.primary]
