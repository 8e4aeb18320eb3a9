"""Elections of a real 3-member mongod 6.0.5 replica set under w:majority writes, with the real membership
loop following them (docs/clustering.md, "MongoDB": the set elects, kubetrove follows, M1-M4).

What must hold: every acknowledged (majority) write survives every election, exactly once; after each
SIGKILL of the primary the set elects another member and the loop records it as ``status.primary``
(labels and an Event ``PrimaryChanged``) without promoting anyone itself; the killed member restarts
on its files and rejoins as a secondary holding every acknowledged write.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubetrove.agent.protocol import Role
from tests.integration.cluster_engine_mongodb import MongoDBEngine
from tests.integration.cluster_harness import (
    Cluster,
    Writer,
    failover_round,
    missing_and_duplicates,
    rejoin,
    running,
    switchover_round,
    until,
)

ROUNDS = 5


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running(MongoDBEngine(tmp_path)) as started:
        yield started


def reasons(cluster: Cluster) -> list[str]:
    return [reason for reason, _, _ in cluster.record.events]


async def test_the_set_initiated_by_the_loop_elects_after_each_primary_kill_and_loses_no_acknowledged_write(
    cluster: Cluster,
) -> None:
    assert "ReplicaSetInitiated" in reasons(cluster)  # the loop created the set through db-0's agent
    writer = Writer(cluster).start()
    gaps: list[float] = []
    try:
        for _ in range(ROUNDS):
            old, new, gap = await failover_round(cluster, writer)
            assert new != old
            gaps.append(gap)
            assert cluster.record.labels[new] == "primary" and cluster.record.labels[old] == "replica"
            await rejoin(cluster, old)
            status = await cluster.ops.status(old)
            assert (status.role, status.read_only) == (Role.REPLICA, True)
        await until(lambda: writer.on(cluster.primary) >= 50, "writes continue on the last primary")
    finally:
        writer.stop()
    assert reasons(cluster).count("PrimaryChanged") >= ROUNDS + 1  # the first election and each round's
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)
    others = [p for p in cluster.pods if p != cluster.primary]
    await cluster.caught_up(others)
    stored = sorted(cluster.engine.ids(cluster.servers[cluster.primary]))
    for pod in others:
        assert sorted(cluster.engine.ids(cluster.servers[pod])) == stored
    print(
        f"mongodb: {ROUNDS} elections, {len(writer.acked)} acknowledged writes, 0 lost; client write gap "
        f"p50 {statistics.median(gaps):.1f} s, max {max(gaps):.1f} s"
    )


async def test_spec_primary_switches_over_through_an_election_under_writes(cluster: Cluster) -> None:
    writer = Writer(cluster).start()
    try:
        for _ in range(2):
            target = next(p for p in cluster.pods if p != cluster.primary)
            gap = await switchover_round(cluster, writer, target)
            assert cluster.record.labels[target] == "primary"
            print(f"mongodb switchover to {target}: client write gap {gap:.1f} s")
        # At least the first round is asked for; a step-up the voters refuse (409, asked again) still
        # raised the term, and the set may then elect the target by itself.
        assert reasons(cluster).count("SwitchoverRequested") >= 1
        with cluster.servers[cluster.primary].client() as c:  # type: ignore[attr-defined]
            term = c.admin.command("replSetGetStatus")["term"]
        print(f"mongodb: term {term} after the first election and 2 switchovers")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)
