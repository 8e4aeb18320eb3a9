"""A 3-member MySQL 9.7 cluster with lossless semi-sync, through real agents and the real clustering loop.

What must hold (docs/clustering.md, I1-I7 and "MySQL"): every acknowledged write is on the new primary
exactly once after a SIGKILL of the primary under load and after a switchover; an ex-primary whose
history is a subset of the new primary's rejoins as a replica; one that kept a transaction nobody
acknowledged (MySQL's crash recovery commits what its binary log holds: unlike MariaDB there is no
semi-sync truncation) is errant, quarantined and never served, and is then rebuilt by clone from the
new primary automatically (I7: the discarded GTIDs named in status and an Event); a replica with a
transaction of its own is quarantined and never chosen, and with ``spec.failover.rebuildErrant`` off
it stays so until its volume is deleted (the manual rebuild: an empty member clones itself).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from kubetrove.agent.protocol import Role
from kubetrove.datastores.mysql import gtid
from tests.integration.cluster_engines import MySQLEngine
from tests.integration.cluster_harness import (
    INTERVAL_SECONDS,
    Cluster,
    Writer,
    failover_round,
    missing_and_duplicates,
    partition_round,
    running,
    switchover_round,
    until,
)
from tests.integration.servers.mysql import MySQLServer


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running(MySQLEngine(tmp_path)) as started:
        yield started


def server(cluster: Cluster, pod: str) -> MySQLServer:
    return cast(MySQLServer, cluster.servers[pod])


def executed(cluster: Cluster, pod: str) -> gtid.GtidSet:
    return gtid.GtidSet.parse(server(cluster, pod).query("SELECT @@GLOBAL.gtid_executed")[0][0])


def reasons(cluster: Cluster) -> list[str]:
    return [reason for reason, _, _ in cluster.record.events]


def modes(cluster: Cluster) -> dict[str, tuple[int, int, int]]:
    """(read_only, super_read_only, rpl_semi_sync_source_enabled) per member that is up."""
    query = "SELECT @@read_only, @@super_read_only, @@rpl_semi_sync_source_enabled"
    found = {}
    for pod in cluster.pods:
        try:
            found[pod] = cast(tuple[int, int, int], tuple(server(cluster, pod).query(query)[0]))
        except Exception:  # a member that is down has no mode
            continue
    return found


def rebuild_errant(cluster: Cluster, on: bool) -> None:
    """spec.failover.rebuildErrant."""
    cluster.record.base = replace(cluster.record.base, rebuild_errant=on)


async def rebuilt(cluster: Cluster, pod: str, uuid: str, discarded: gtid.GtidSet | None = None) -> None:
    """The loop rebuilds the quarantined ``pod`` by clone from the primary, naming what it discards (I7):
    ``discarded`` when given, else some transactions of ``pod``'s own (server ``uuid``). It then streams
    from the primary, back in the read-only Service (Healthy)."""
    await until(lambda: pod in cluster.record.rebuilds, f"{pod} rebuilt")
    source, named = cluster.record.rebuilds[pod]
    assert source == cluster.primary
    if discarded is not None:
        assert gtid.GtidSet.parse(named) == discarded, (named, discarded.format(","))
    assert re.fullmatch(rf"{uuid}:\d+(-\d+)?", named), named
    assert any(r == "MemberRebuilding" and pod in m for r, m, _ in cluster.record.events)
    await until(lambda: pod not in cluster.record.errant, f"{pod} no longer errant")
    await cluster.healthy()
    assert cluster.record.labels.get(pod) == "replica"
    assert executed(cluster, pod).is_subset(executed(cluster, cluster.primary))


async def rebuild_from_empty(cluster: Cluster, pod: str) -> None:
    """Rebuild ``pod`` by hand (its volume deleted): empty, it clones itself; the loop takes it back."""
    await asyncio.to_thread(cast(MySQLEngine, cluster.engine).rebuild, cluster.servers[pod])
    await until(lambda: pod not in cluster.record.errant, f"{pod} no longer errant")
    await cluster.healthy()


async def test_semi_sync_is_on_only_on_the_primary_and_acknowledges_every_commit(cluster: Cluster) -> None:
    primary = cluster.primary
    assert modes(cluster)[primary] == (0, 0, 1)
    for pod in cluster.pods:
        if pod != primary:
            assert modes(cluster)[pod] == (1, 1, 0), pod
            status = await cluster.ops.status(pod)
            assert (status.role, status.source_host) == (Role.REPLICA, primary)
    before = int(
        server(cluster, primary).query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_yes_tx'")[0][1]
    )
    writer = Writer(cluster).start()
    try:
        await until(lambda: writer.on(primary) >= 50, "50 writes on the primary")
    finally:
        writer.stop()
    yes = int(server(cluster, primary).query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_yes_tx'")[0][1])
    no = int(server(cluster, primary).query("SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_no_tx'")[0][1])
    assert yes - before >= len(writer.acked) and no == 0  # every commit waited for a replica's ack


async def test_sigkill_of_the_primary_loses_no_acknowledged_write_and_its_tail_is_never_served(
    cluster: Cluster,
) -> None:
    old_uuid = server(cluster, cluster.primary).query("SELECT @@server_uuid")[0][0]
    rebuild_errant(cluster, False)  # the rows only the ex-primary holds are read before it is rebuilt
    writer = Writer(cluster).start()
    try:
        old, new, gap = await failover_round(cluster, writer)
        assert new != old
        await until(lambda: "FailoverSucceeded" in reasons(cluster), "a FailoverSucceeded Event")
        print(f"mysql failover {old} -> {new}: client write gap {gap:.2f}s")
        # While the writer runs: what was acknowledged BEFORE the read must be on the new primary.
        acked_so_far = {a.write_id for a in list(writer.acked)}
        assert acked_so_far - set(cluster.engine.ids(cluster.servers[new])) == set()
        # The killed primary restarts. If the kill landed between its binlog write and the replica's
        # acknowledgement, crash recovery commits that transaction: GTIDs the new primary never had,
        # so the member is errant. Otherwise its history is a subset and it rejoins. Either way the
        # rows only it holds were never acknowledged to the application.
        await asyncio.to_thread(cluster.restart, old)
        await until(
            lambda: old in cluster.record.errant or cluster.record.state == "Healthy",
            f"{old} rejoined or quarantined",
        )
        acked = {a.write_id for a in writer.acked}
        only_old = set(cluster.engine.ids(cluster.servers[old])) - set(
            cluster.engine.ids(cluster.servers[new])
        )
        assert not only_old & acked, only_old & acked
        if old in cluster.record.errant:
            print(f"mysql: {old} kept {len(only_old)} unacknowledged row(s): quarantined, rebuilt by clone")
            tail = executed(cluster, old).subtract(executed(cluster, new))
            await until(lambda: cluster.record.labels.get(old) == "errant", f"{old} labelled errant")
            rebuild_errant(cluster, True)
            await rebuilt(cluster, old, old_uuid, tail)
        else:
            await cluster.healthy()
        status = await cluster.ops.status(old)
        assert (status.role, status.source_host, status.read_only) == (Role.REPLICA, new, True)
        await until(lambda: writer.on(new) >= 100, "writes continue on the new primary")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)
    await cluster.caught_up([old])
    assert sorted(cluster.engine.ids(cluster.servers[old])) == sorted(
        cluster.engine.ids(cluster.servers[new])
    )


async def test_an_unacknowledged_transaction_of_the_killed_primary_is_quarantined_never_served(
    cluster: Cluster,
) -> None:
    """Made certain: no replica receives the last transaction, the primary dies in commit; the loop
    fails over; the restarted ex-primary recovers the transaction (its binlog has it) and is errant.
    """
    old = cluster.primary
    rebuild_errant(cluster, False)  # first: quarantined and never served, however long it lasts
    cluster.stopped.set()  # the loop would restart the receivers while the scene is set
    assert cluster.task is not None
    await cluster.task
    for pod in cluster.pods:
        if pod != old:
            server(cluster, pod).query("STOP REPLICA IO_THREAD")
    primary = server(cluster, old)
    waiting = "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_source_wait_sessions'"
    # Blocks in commit waiting for an acknowledgement that cannot come; fails when the server dies.
    blocked = asyncio.create_task(
        asyncio.to_thread(primary.query, "INSERT INTO app.w (id, pod) VALUES (-2, 'unacked')")
    )
    # AFTER_SYNC: the transaction is in the binary log (synced) and waits for an acknowledgement before
    # the engine commit; gtid_executed shows it only after that wait.
    await until(lambda: int(primary.query(waiting)[0][1]) == 1, "the commit waiting for an acknowledgement")
    cluster.kill(old)
    with pytest.raises(Exception):  # noqa: B017,PT011 (pymysql's error class for a lost connection varies)
        await blocked
    cluster.stopped = asyncio.Event()
    cluster.task = asyncio.create_task(cluster.loop.run(cluster.stopped))
    await until(lambda: cluster.record.primary != old, "a new primary in status")
    new = cluster.primary
    await until(lambda: "FailoverSucceeded" in reasons(cluster), "a FailoverSucceeded Event")
    await asyncio.to_thread(cluster.restart, old)
    await until(lambda: old in cluster.record.errant, f"{old} reported errant")
    await until(lambda: cluster.record.labels.get(old) == "errant", f"{old} labelled errant")
    await until(lambda: "ErrantTransactions" in reasons(cluster), "an ErrantTransactions Event")
    assert -2 in cluster.engine.ids(cluster.servers[old])  # recovered from its binlog...
    for pod in cluster.pods:
        if pod != old:
            assert -2 not in cluster.engine.ids(cluster.servers[pod]), pod  # ...and nowhere else
    cluster.switchover(old)  # asking for it as the primary is refused
    await asyncio.sleep(8 * INTERVAL_SECONDS)
    assert cluster.primary == new and old in cluster.record.errant
    cluster.switchover(new)  # withdrawn: the rebuilt member would otherwise take over once it streams
    tail = executed(cluster, old).subtract(executed(cluster, new))
    uuid = server(cluster, old).query("SELECT @@server_uuid")[0][0]
    assert re.fullmatch(rf"{uuid}:\d+", tail.format(",")), tail.format(",")  # exactly the unacked commit
    rebuild_errant(cluster, True)  # then: the loop rebuilds it by clone, naming that GTID
    await rebuilt(cluster, old, uuid, tail)
    await cluster.caught_up([old])
    assert -2 not in cluster.engine.ids(cluster.servers[old])
    assert uuid == server(cluster, old).query("SELECT @@server_uuid")[0][0]  # a clone keeps its identity


async def test_a_replica_with_its_own_transaction_is_quarantined_and_never_chosen(cluster: Cluster) -> None:
    primary = cluster.primary
    replica = next(p for p in cluster.pods if p != primary)
    rebuild_errant(cluster, False)  # spec.failover.rebuildErrant: false keeps it for inspection
    writer = Writer(cluster).start()
    try:
        await until(lambda: writer.on(primary) >= 20, "writes on the primary")
        writer.paused.set()
        await cluster.caught_up([replica])
        # An operator's mistake: an admin lifts the fence on a replica and writes there. The server logs
        # it under its own server_uuid: a GTID the primary never had (GTID_SUBSET is false).
        conn = server(cluster, replica).connect()
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL super_read_only = OFF")
            cur.execute("INSERT INTO app.w (id, pod) VALUES (-1, 'errant')")
            cur.execute("SET GLOBAL super_read_only = ON")
        conn.close()
        uuid = server(cluster, replica).query("SELECT @@server_uuid")[0][0]
        errant = executed(cluster, replica).subtract(executed(cluster, primary))
        assert re.fullmatch(rf"{uuid}:\d+", errant.format(",")), errant.format(",")
        await until(lambda: replica in cluster.record.errant, f"{replica} reported errant")
        writer.paused.clear()
        await until(lambda: cluster.record.labels.get(replica) == "errant", f"{replica} labelled errant")
        await until(lambda: "ErrantTransactions" in reasons(cluster), "an ErrantTransactions Event")
        cluster.switchover(replica)  # asking for it as the primary is refused
        await asyncio.sleep(8 * INTERVAL_SECONDS)
        assert cluster.primary == primary and replica in cluster.record.errant
        await until(lambda: writer.on(primary) >= 100, "writes continue on the primary")
        assert replica not in cluster.record.rebuilds  # never rebuilt while the spec says no
        cluster.switchover(primary)
        await rebuild_from_empty(cluster, replica)
        await cluster.caught_up([replica])
        assert -1 not in cluster.engine.ids(cluster.servers[replica])
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)


async def test_switchover_under_load_loses_nothing_and_swaps_roles(cluster: Cluster) -> None:
    old = cluster.primary
    target = cluster.pods[-1]
    writer = Writer(cluster).start()
    try:
        gap = await switchover_round(cluster, writer, target)
        print(f"mysql switchover {old} -> {target}: client write gap {gap:.2f}s")
        await cluster.healthy()
        status = await cluster.ops.status(old)
        assert (status.role, status.source_host, status.read_only) == (Role.REPLICA, target, True)
        assert modes(cluster)[old] == (1, 1, 0) and modes(cluster)[target] == (0, 0, 1)
        gap_back = await switchover_round(cluster, writer, old)
        print(f"mysql switchover {target} -> {old}: client write gap {gap_back:.2f}s")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)


async def test_a_primary_cut_off_from_the_operator_acknowledges_nothing_the_new_primary_lacks(
    cluster: Cluster,
) -> None:
    """Fencing under partition (``partition_round``). Here the old primary holds the commit that waited, a
    GTID the new primary lacks: it is errant, quarantined (fenced, its client's session ended) and rebuilt
    by clone (I7), which discards that commit, never acknowledged."""
    await partition_round(cluster)
