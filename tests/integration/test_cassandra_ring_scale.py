"""Shrinking a real three-node Cassandra ring through the agent: refused below a keyspace's factor, else a
real ``nodetool decommission`` (the node streams its ranges away and leaves the ring).

The ring is the session's: the decommissioned node is wiped and bootstraps back in before the test ends.
"""

from __future__ import annotations

import asyncio

import pytest

from kubetrove.agent.client import AgentError
from tests.integration.cluster_harness import until
from tests.integration.ring_harness import RingRig


async def test_decommission_is_refused_below_a_factor_then_the_node_leaves(rig: RingRig) -> None:
    leaving, pod = rig.ring.nodes[2], rig.pod(2)
    first = rig.agents[rig.pod(0)]
    await first.ensure_ring_replication(3)
    with pytest.raises(AgentError) as refused:
        await rig.agents[pod].decommission()
    assert refused.value.status == 409
    assert "2 nodes would be left, fewer than the replication factor of" in str(refused.value)
    assert "system_auth (replication factor 3)" in str(refused.value)
    assert {s.state for s in rig.ring.status().values()} == {"UN"} and len(rig.ring.status()) == 3

    await first.ensure_ring_replication(2)  # every replicated keyspace fits two nodes now
    host_id = rig.record.ring[pod].host_id
    try:
        assert (await rig.agents[pod].decommission()).detail == "decommissioned"
        states = rig.ring.status()
        assert sorted(states) == rig.ring.addresses[:2] and {s.state for s in states.values()} == {"UN"}
        # The loop no longer finds that node in any view: the two that are left are the ring.
        await until(lambda: pod not in rig.record.ring, f"{pod} gone from the ring view", 60)
        assert {p: n.state for p, n in rig.record.ring.items()} == {rig.pod(0): "UN", rig.pod(1): "UN"}
        assert all(host_id not in r for r in rig.record.reasons)  # not reported as a stranger either
    finally:
        # Back to three for the rest of the session: a decommissioned node rejoins only as a new one.
        await asyncio.to_thread(leaving.stop)
        leaving.proc = None
        leaving.wipe()
        await asyncio.to_thread(rig.ring.start_node, leaving)
        await rig.states(dict.fromkeys(rig.pods, "UN"), within=300)
        await first.ensure_ring_replication(3)
