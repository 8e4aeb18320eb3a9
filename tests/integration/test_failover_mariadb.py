"""Failover of a 3-member semi-sync MariaDB cluster under write load, through real agents and the real loop.

What must hold (docs/clustering.md, I1-I6): every acknowledged write is on the new primary exactly once;
the killed primary rejoins as a replica once restarted; a replica with a transaction of its own is
quarantined and never chosen.
"""

from __future__ import annotations

import asyncio
import time
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
    partition_round,
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


async def kill_with_an_unacknowledged_transaction(cluster: Cluster) -> tuple[str, str]:
    """The primary logs a transaction no replica receives, dies, and the loop fails over: (old, new).

    No replica acknowledges it (their receivers are stopped), so its client never gets an OK and the new
    primary never has it. The loop is paused while the scene is set (it would restart the receivers)
    and resumes after the kill, as an operator restarted mid-failure does.
    """
    old = cluster.primary
    cluster.stopped.set()
    assert cluster.task is not None
    await cluster.task
    for pod in cluster.pods:
        if pod != old:
            cluster.servers[pod].query("STOP SLAVE IO_THREAD")  # type: ignore[attr-defined]
    primary = cluster.servers[old]
    before = primary.query("SELECT @@gtid_binlog_pos")[0][0]  # type: ignore[attr-defined]
    # Blocks in commit waiting for an acknowledgement that cannot come; fails when the server dies.
    blocked = asyncio.create_task(
        asyncio.to_thread(primary.query, "INSERT INTO app.w (id, pod) VALUES (-2, 'unacked')")  # type: ignore[attr-defined]
    )
    await until(
        lambda: primary.query("SELECT @@gtid_binlog_pos")[0][0] != before,  # type: ignore[attr-defined]
        "the unacknowledged transaction in the primary's binlog",
    )
    cluster.kill(old)
    with pytest.raises(Exception):  # noqa: B017,PT011 (pymysql's error class for a lost connection varies)
        await blocked
    cluster.stopped = asyncio.Event()
    cluster.task = asyncio.create_task(cluster.loop.run(cluster.stopped))
    await until(lambda: cluster.record.primary != old, "a new primary in status")
    await until(lambda: "FailoverSucceeded" in reasons(cluster), "a FailoverSucceeded Event")
    assert cluster.servers[old].demoted_marker.exists()  # type: ignore[attr-defined]  # fenced while down
    return old, cluster.primary


async def test_an_unacknowledged_transaction_of_the_killed_primary_is_discarded_when_it_rejoins(
    cluster: Cluster,
) -> None:
    """The flake CI once hit, made certain. The failover fenced the dead primary through its agent (the
    demoted marker), so its restart runs MariaDB's semi-sync recovery (init_rpl_role=SLAVE), which rolls
    the transaction back: its history is then a prefix of the new primary's and it rejoins.
    """
    old, new = await kill_with_an_unacknowledged_transaction(cluster)
    await rejoin(cluster, old)
    status = await cluster.ops.status(old)
    assert (status.role, status.source_host, status.replication_error) == (Role.REPLICA, new, None)
    assert old not in cluster.record.errant
    await cluster.caught_up([old])
    for pod in cluster.pods:
        assert -2 not in cluster.engine.ids(cluster.servers[pod]), f"{pod} kept the unacknowledged write"


async def test_an_ex_primary_that_kept_a_transaction_nobody_received_is_quarantined(cluster: Cluster) -> None:
    """The residual window (docs/clustering.md): the server restarted as a primary before the fence
    reached it, so normal crash recovery committed the transaction. Positions cannot show it (MariaDB
    keeps the last GTID per domain); the new primary refuses it, and that refusal makes it errant.
    """
    old, new = await kill_with_an_unacknowledged_transaction(cluster)
    cluster.servers[old].demoted_marker.unlink()  # type: ignore[attr-defined]
    await asyncio.to_thread(cluster.restart, old)
    await until(lambda: old in cluster.record.errant, f"{old} reported errant")
    await until(lambda: cluster.record.labels.get(old) == "errant", f"{old} labelled errant")
    await until(lambda: "ErrantTransactions" in reasons(cluster), "an ErrantTransactions Event")
    assert cluster.primary == new and -2 not in cluster.engine.ids(cluster.servers[new])


async def test_a_primary_restarted_before_detection_comes_back_fenced_and_is_promoted_again(
    cluster: Cluster,
) -> None:
    """A restart turns off semi-sync's primary half (not in the config file); members start read-only, so
    the restarted primary takes no write until the loop promotes it again, semi-sync on. Whether the
    loop saw it down long enough to fail over first depends on timing: either way the primary it ends
    with must be writable only with semi-sync on, and no acknowledged write is lost.
    """
    old = cluster.primary
    writer = Writer(cluster).start()
    try:
        await until(lambda: writer.on(old) >= 20, f"writes on {old}")
        cluster.kill(old)
        restarted = time.monotonic()
        await asyncio.to_thread(cluster.restart, old)
        # Counted from the restart: writes acknowledged before the kill prove nothing (a count since the
        # start could pass before the loop had even seen the restart, and the check below would race it).
        await until(
            lambda: writer.on(cluster.primary, since=restarted) >= 30, "writes acknowledged after the restart"
        )
        await cluster.healthy()

        def modes() -> dict[str, tuple[int, int]]:
            query = "SELECT @@read_only, @@rpl_semi_sync_master_enabled"
            return {pod: tuple(server.query(query)[0]) for pod, server in cluster.servers.items()}  # type: ignore[attr-defined]

        # The invariant at any instant: no member is writable with semi-sync's primary half off.
        assert (0, 0) not in modes().values(), modes()
        # And the loop settles on a writable primary with semi-sync on.
        await until(lambda: modes()[cluster.primary] == (0, 1), f"{cluster.primary} writable with semi-sync")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)


async def test_a_primary_cut_off_from_the_operator_acknowledges_nothing_the_new_primary_lacks(
    cluster: Cluster,
) -> None:
    """Fencing under partition (``partition_round``). Here MariaDB compares the last GTID per domain: with
    the new primary's history past the old one's, the loop repoints the old primary rather than
    quarantining it, and the demotion switches semi-sync's primary half off, which would acknowledge
    the waiting commit had the fence not ended its session first."""
    await partition_round(cluster)
