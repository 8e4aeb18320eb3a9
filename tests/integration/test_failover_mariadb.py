"""Failover of a 3-member semi-sync MariaDB cluster under write load, through real agents and the real loop.

What must hold (docs/clustering.md, I1-I6): every acknowledged write is on the new primary exactly once;
the killed primary rejoins as a replica once restarted; a replica with a transaction of its own is
quarantined and never chosen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubetrove.agent.protocol import Role
from tests.integration.cluster_engines import MariaDBEngine
from tests.integration.cluster_harness import (
    INTERVAL_SECONDS,
    Cluster,
    Writer,
    failover_round,
    missing_and_duplicates,
    rejoin,
    running,
    until,
)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running(MariaDBEngine(tmp_path)) as started:
        yield started


def reasons(cluster: Cluster) -> list[str]:
    return [reason for reason, _, _ in cluster.record.events]


async def test_sigkill_of_the_primary_loses_no_acknowledged_write_and_it_rejoins(cluster: Cluster) -> None:
    writer = Writer(cluster).start()
    try:
        old, new, gap = await failover_round(cluster, writer)
        assert new != old
        # The Event follows the repointing, which may finish after the first writes on the new primary.
        await until(lambda: "FailoverSucceeded" in reasons(cluster), "a FailoverSucceeded Event")
        print(f"mariadb failover {old} -> {new}: client write gap {gap:.2f}s")
        await rejoin(cluster, old)
        status = await cluster.ops.status(old)
        assert (status.role, status.source_host, status.read_only) == (Role.REPLICA, new, True)
        assert old not in cluster.record.errant  # its history is a prefix of the new primary's
        await until(lambda: writer.on(new) >= 100, "writes continue on the new primary")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)
    await cluster.caught_up([old])  # the rejoined member replays everything, acknowledged writes included
    assert sorted(cluster.engine.ids(cluster.servers[old])) == sorted(
        cluster.engine.ids(cluster.servers[new])
    )


async def test_a_replica_with_its_own_transaction_is_quarantined_and_never_chosen(cluster: Cluster) -> None:
    primary = cluster.primary
    replica = next(p for p in cluster.pods if p != primary)
    writer = Writer(cluster).start()
    try:
        await until(lambda: writer.on(primary) >= 20, "writes on the primary")
        writer.paused.set()  # a still replica: its own write is then ahead of the primary, not interleaved
        await cluster.caught_up([replica])
        # What an operator's mistake looks like: a privileged account (READ ONLY ADMIN bypasses
        # read_only) writes on a replica, and the server logs it with its own server_id.
        cluster.servers[replica].query("INSERT INTO app.w (id, pod) VALUES (-1, 'errant')")  # type: ignore[attr-defined]
        await until(lambda: replica in cluster.record.errant, f"{replica} reported errant")
        writer.paused.clear()
        # status.errantMembers is written at observe time; the label and the Event come from act, later in
        # the same cycle (after replication on the errant member is stopped), so wait for them too.
        await until(lambda: cluster.record.labels.get(replica) == "errant", f"{replica} labelled errant")
        await until(lambda: "ErrantTransactions" in reasons(cluster), "an ErrantTransactions Event")
        cluster.switchover(replica)  # asking for it as the primary is refused
        await asyncio.sleep(8 * INTERVAL_SECONDS)  # several cycles
        assert cluster.primary == primary and replica in cluster.record.errant
        assert await cluster.ops.status(primary)
        await until(lambda: writer.on(primary) >= 100, "writes continue on the primary")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)
