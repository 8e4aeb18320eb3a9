"""Changing the nodes of a real three-node Cassandra ring: shrinking through the agent (refused below a
keyspace's factor, else a real ``nodetool decommission``), and replacing a dead node whose volume is lost
by a new node started with ``replace_address_first_boot`` (it takes over the dead node's tokens).
https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/topo_changes.html

The ring is the session's: each test leaves three UN nodes behind (the replacement stays in the ring).
"""

from __future__ import annotations

import asyncio

import pytest

from kubetrove.agent.client import AgentError
from tests.integration.cluster_harness import until
from tests.integration.ring_harness import RingRig, ring_rig
from tests.integration.servers._proc import free_port
from tests.integration.servers.cassandra_ring import Ring, RingNode, write_config


async def test_decommission_is_refused_below_a_factor_then_the_node_leaves(rig: RingRig) -> None:
    leaving, pod = rig.ring.nodes[2], rig.pod(2)
    first = rig.agents[rig.pod(0)]
    await first.ensure_ring_replication(3)
    await first.ensure_database("ledger", 3)
    # The check the operator asks first changes nothing: the ring's system keyspaces and what the
    # operator lowers itself (``lowering``) are not in the way; a keyspace it does not lower is.
    with pytest.raises(AgentError) as checked:
        await first.leave_check(2, [])
    assert checked.value.status == 409
    assert "2 nodes would be left, fewer than the replication factor of ledger (replication factor 3)" in str(
        checked.value
    )
    assert "system_auth" not in str(checked.value)
    assert (await first.leave_check(2, ["ledger"])).detail == "2 nodes can hold every keyspace"
    await first.drop_database("ledger")
    assert (await first.leave_check(2, [])).detail == "2 nodes can hold every keyspace"
    with pytest.raises(AgentError) as refused:
        await rig.agents[pod].decommission()
    assert refused.value.status == 409
    assert "2 nodes would be left, fewer than the replication factor of" in str(refused.value)
    assert "system_auth (replication factor 3)" in str(refused.value)
    assert {s.state for s in rig.ring.status().values()} == {"UN"} and len(rig.ring.status()) == 3

    await first.ensure_ring_replication(2)  # every replicated keyspace fits two nodes now
    host_id = rig.record.ring[pod].host_id
    assert (await rig.agents[pod].decommission()).detail == "decommissioned"
    try:
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


def tokens(node: RingNode) -> list[str]:
    with node.server.session() as s:
        return sorted(s.execute("SELECT tokens FROM system.local").one().tokens, key=int)


async def test_a_dead_node_is_replaced_by_a_new_one_taking_its_tokens(
    cassandra_ring3: Ring, nodetool_on_path: None
) -> None:
    ring, dead = cassandra_ring3, cassandra_ring3.nodes[2]
    owned = tokens(dead)
    async with ring_rig(ring) as rig:
        await rig.states(dict.fromkeys(rig.pods, "UN"))
        await rig.agents[rig.pod(0)].ensure_ring_replication(3)  # roles must survive losing a node
        dead.kill()
        await rig.states({rig.pod(2): "DN"})
    # Its volume is lost: the pod comes back as a new node on a new address, told whom it replaces.
    new = RingNode(
        address="127.0.0.9",
        workdir=dead.workdir.parent / "127.0.0.9",
        jmx_port=free_port(),
        native_port=ring.native_port,
    )
    new.workdir.mkdir()
    write_config(ring, new)
    ring.nodes[2] = new
    await asyncio.to_thread(ring.start_node, new, {"cassandra.replace_address_first_boot": dead.address})
    await asyncio.to_thread(ring.wait_for, dict.fromkeys(ring.addresses, "UN"))
    assert dead.address not in ring.status()  # the dead node is out of the ring, not DN forever
    assert tokens(new) == owned  # the same ranges: streamed from the replicas while it joined
    async with ring_rig(ring) as rig:  # the replacement pod's agent
        await rig.states(dict.fromkeys(rig.pods, "UN"))
        await until(lambda: rig.record.state == "Healthy", "Healthy with the replacement")
        assert rig.record.ring[rig.pod(2)].address == new.address and rig.record.reasons == ()
