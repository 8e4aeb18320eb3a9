"""Declarative switchover (spec.primary) of a 3-member semi-sync MariaDB cluster under write load.

The old primary is fenced, the target catches up, then takes over; the client sees a short write gap,
loses no acknowledged write, and the old primary replicates from the new one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubetrove.agent.protocol import Role
from tests.integration.cluster_engines import MariaDBEngine
from tests.integration.cluster_harness import (
    Cluster,
    Writer,
    missing_and_duplicates,
    running,
    switchover_round,
)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with running(MariaDBEngine(tmp_path)) as started:
        yield started


async def test_switchover_under_load_loses_nothing_and_swaps_roles(cluster: Cluster) -> None:
    old = cluster.primary
    target = cluster.pods[-1]
    writer = Writer(cluster).start()
    try:
        gap = await switchover_round(cluster, writer, target)
        print(f"mariadb switchover {old} -> {target}: client write gap {gap:.2f}s")
        await cluster.healthy()
        status = await cluster.ops.status(old)
        assert (status.role, status.source_host, status.read_only) == (Role.REPLICA, target, True)
        assert (
            "SwitchoverSucceeded",
            f"primary {old} handed over to {target}",
            False,
        ) in cluster.record.events
        gap_back = await switchover_round(cluster, writer, old)  # and back again
        print(f"mariadb switchover {target} -> {old}: client write gap {gap_back:.2f}s")
    finally:
        writer.stop()
    missing, duplicates = missing_and_duplicates(cluster, writer)
    assert (missing, duplicates) == (set(), 0)
