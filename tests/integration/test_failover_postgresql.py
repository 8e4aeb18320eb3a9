"""Failover of a 3-member PostgreSQL cluster (streaming replication, synchronous_standby_names ANY 1)
under write load, through real agents and the real loop; the old primary rejoins through pg_rewind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kubetrove.agent.protocol import Role
from tests.integration.cluster_engines import PostgreSQLEngine
from tests.integration.cluster_harness import (
    Cluster,
    Writer,
    failover_round,
    missing_and_duplicates,
    rejoin,
    running,
    until,
)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with running(PostgreSQLEngine()) as started:
        yield started


async def test_sigkill_of_the_postmaster_loses_no_acknowledged_write_and_it_rejoins(cluster: Cluster) -> None:
    writer = Writer(cluster).start()
    try:
        old, new, gap = await failover_round(cluster, writer)
        assert new != old
        print(f"postgresql failover {old} -> {new}: client write gap {gap:.2f}s")
        await rejoin(cluster, old)  # pg_rewind onto the new timeline, then a standby of the new primary
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
