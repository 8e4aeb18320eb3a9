"""An asynchronous 3-member MySQL 8.0.31 cluster (Oracle's generic build, hack/build-mysql.sh) through real
agents and the real clustering loop: the 8.0 dialect under the loop, not a lossless cluster.

8.0.31's plugin directory is stripped: no semi-sync, no clone. So replication is asynchronous: the
rendered ``kubetrove.cnf`` without its plugin lines, and no role parameters. What must hold: the loop
bootstraps a primary and read-only (``super_read_only``) replicas; a switchover under load loses nothing
(the target applies the old primary's position before it is promoted); a SIGKILL failover promotes the
replica holding everything the other one holds (I4), but an acknowledged write may exist only on the
killed primary (made certain here: it is lost, as asynchronous replication allows); the restarted
ex-primary, holding it, is quarantined as errant and never served, and its rebuild is refused by its
agent (no clone plugin) once, with the agent's back-off, not every cycle. 8.0 is not in the catalog
(8.4 and 9.7 are).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from kubetrove.agent.protocol import Role
from tests.integration.cluster_engines import MySQLEngine
from tests.integration.cluster_harness import (
    INTERVAL_SECONDS,
    Cluster,
    Writer,
    missing_and_duplicates,
    running,
    switchover_round,
    until,
)
from tests.integration.servers.mysql import MySQLServer


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running(MySQLEngine(tmp_path, version="8.0", lossless=False)) as started:
        yield started


def ids(cluster: Cluster, pod: str) -> set[int]:
    return set(cluster.engine.ids(cluster.servers[pod]))


async def test_asynchronous_80_cluster_switchover_failover_and_a_clone_less_rebuild(cluster: Cluster) -> None:
    primary = cluster.primary
    for pod in cluster.pods:
        status = await cluster.ops.status(pod)
        assert status.version.startswith("8.0.31"), status.version
        if pod != primary:
            assert (status.role, status.source_host, status.read_only) == (Role.REPLICA, primary, True)
            assert cast(MySQLServer, cluster.servers[pod]).query("SELECT @@super_read_only")[0][0] == 1

    writer = Writer(cluster).start()
    try:
        target = cluster.pods[-1]
        gap = await switchover_round(cluster, writer, target)
        print(f"mysql 8.0.31 switchover {primary} -> {target}: client write gap {gap:.2f}s")
        await cluster.healthy()
        writer.paused.set()
        await asyncio.sleep(0.5)
        missing, duplicates = missing_and_duplicates(cluster, writer)
        assert (missing, duplicates) == (set(), 0)  # a switchover waits for the target: nothing lost
    finally:
        writer.stop()

    # Made certain: an acknowledged write no replica received (their receivers stopped while the loop is
    # paused), then SIGKILL of the primary. Asynchronous replication acknowledged it anyway.
    old = cluster.primary
    cluster.stopped.set()
    assert cluster.task is not None
    await cluster.task
    for pod in cluster.pods:
        if pod != old:
            cast(MySQLServer, cluster.servers[pod]).query("STOP REPLICA IO_THREAD")
    cast(MySQLServer, cluster.servers[old]).query("INSERT INTO app.w (id, pod) VALUES (-3, 'async')")
    cluster.kill(old)
    cluster.stopped = asyncio.Event()
    cluster.task = asyncio.create_task(cluster.loop.run(cluster.stopped))
    await until(lambda: cluster.record.primary != old, "a new primary in status")
    new = cluster.primary
    other = next(p for p in cluster.pods if p not in (old, new))
    await cluster.caught_up([other])
    assert ids(cluster, other) <= ids(cluster, new)  # I4: the promoted replica held the most
    assert -3 not in ids(cluster, new)  # lost: asynchronous replication promises nothing more

    await asyncio.to_thread(cluster.restart, old)
    await until(lambda: old in cluster.record.errant, f"{old} quarantined")
    assert -3 in ids(cluster, old)  # kept, never served (errant: out of the Services)
    # No clone here: the rebuild is refused by the agent, reported in the loop's reasons, and asked for
    # once per back-off, not every cycle.
    await until(
        lambda: any("clone plugin is not active" in r for r in cluster.record.reasons),
        f"the refusal reported (reasons {cluster.record.reasons}, events {cluster.record.events})",
        within=30,
    )
    await asyncio.sleep(10 * INTERVAL_SECONDS)
    refused = [m for r, m, _ in cluster.record.events if r == "RebuildRefused"]
    assert len(refused) == 1 and old in refused[0], refused
    assert old in cluster.record.errant and cluster.record.labels.get(old) == "errant"
    assert old not in cluster.record.rebuilds
