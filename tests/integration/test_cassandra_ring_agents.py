"""The ring loop, users and keyspaces on a real three-node Cassandra 5.0 ring, through the real agents.

The ring is the session's (conftest_ring.py); ``ring_harness`` puts one agent in front of each node and
runs the real ``RingLoop``. A test that takes a node down brings it back (3x UN) before it ends.
"""

from __future__ import annotations

import asyncio

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import Grant, Privilege
from tests.integration.cluster_harness import until
from tests.integration.ring_harness import QuorumWriter, RingRig
from tests.integration.servers.cassandra_ring import Ring

SIMPLE = "org.apache.cassandra.locator.SimpleStrategy"


def replication(ring: Ring, keyspace: str, via: int) -> dict[str, str]:
    with ring.nodes[via].server.session() as s:
        row = s.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name=%s", (keyspace,)
        ).one()
    return dict(row.replication)


async def test_members_are_the_real_nodes_with_their_host_ids_and_tokens(rig: RingRig) -> None:
    await until(lambda: rig.record.state == "Healthy", "Healthy")
    truth = rig.ring.status()  # nodetool status, run here: what the ring itself says
    for i, pod in enumerate(rig.pods):
        node = rig.record.ring[pod]
        real = truth[rig.ring.nodes[i].address]
        assert (node.state, node.host_id, node.tokens, node.address) == ("UN", real.host_id, 16, real.address)
        assert node.load is not None and node.load.split()[1] in {"bytes", "KiB", "MiB"}
        status = rig.record.members[pod]
        assert status is not None and status.host_id == real.host_id and status.healthy
    assert rig.record.reasons == ()


async def views_equal_nodetool(rig: RingRig, via: int, within: float = 60.0) -> None:
    """Node ``via``'s agent's ring view (Jolokia: StorageService's attributes) equals ``nodetool status``
    through the same node, every field of every node. Both are read a moment apart, and a load or a
    state may change between the two reads: retried until they agree (what "settled" means)."""
    seen: list[object] = []

    async def same() -> bool:
        view = (await rig.agents[rig.pod(via)].status()).ring
        truth = await asyncio.to_thread(rig.ring.status, via)
        mine = {n.address: (n.state, n.host_id, n.tokens, n.load or "?") for n in view or []}
        theirs = {a: (n.state, n.host_id, n.tokens, n.load) for a, n in truth.items()}
        seen[:] = [mine, theirs]
        return mine == theirs

    try:
        await until(same, f"node {via}'s agent view equal to nodetool status through it", within, every=2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: agent {seen[0]}, nodetool {seen[1]}") from None


async def test_each_agents_ring_view_is_nodetool_status_through_its_node(rig: RingRig) -> None:
    for via in range(len(rig.pods)):
        await views_equal_nodetool(rig, via)


async def test_system_auth_follows_the_ring_and_keyspaces_fit_it(rig: RingRig) -> None:
    first, last = rig.agents[rig.pod(0)], rig.agents[rig.pod(2)]
    # Raised with the ring (else the one node holding the roles is a single point of login failure).
    reply = await first.ensure_ring_replication(3)
    assert reply.ok
    for via in range(3):
        assert replication(rig.ring, "system_auth", via) == {"class": SIMPLE, "replication_factor": "3"}
    assert (await first.ensure_ring_replication(3)).detail == "unchanged"

    await first.ensure_database("ring_shop", 3)
    assert replication(rig.ring, "ring_shop", 2) == {"class": SIMPLE, "replication_factor": "3"}
    with pytest.raises(AgentError) as refused:
        await first.ensure_database("ring_big", 4)
    assert refused.value.status == 400 and "replication_factor" in str(refused.value)
    assert "ring_big" not in (await last.list_databases())

    await first.ensure_user(
        "ring_app", "app-Pw-1", [Grant(database="ring_shop", privileges=[Privilege.READ_WRITE])]
    )
    with rig.ring.nodes[0].server.session() as s:
        s.execute("CREATE TABLE IF NOT EXISTS ring_shop.items (id int PRIMARY KEY, name text)", timeout=60)
    # The role logs in and writes through every node, and still logs in with one node down.
    for node in rig.ring.nodes:
        with node.server.session("ring_app", "app-Pw-1") as s:
            s.execute("INSERT INTO ring_shop.items (id, name) VALUES (1, 'one')")
    rig.ring.nodes[0].stop()
    try:
        with rig.ring.nodes[2].server.session("ring_app", "app-Pw-1") as s:
            read = SimpleStatement(
                "SELECT name FROM ring_shop.items WHERE id = 1", consistency_level=ConsistencyLevel.QUORUM
            )
            assert s.execute(read).one().name == "one"
    finally:
        await asyncio.to_thread(rig.ring.start_node, rig.ring.nodes[0])
        await rig.states(dict.fromkeys(rig.pods, "UN"))
    await last.drop_database("ring_shop")  # through a node that stayed up (a cold JVM is slow on DDL)
    await last.drop_user("ring_app")


async def test_one_node_of_three_killed_under_quorum_writes_loses_nothing_and_rejoins(rig: RingRig) -> None:
    await rig.agents[rig.pod(0)].ensure_database("ring_fault", 3)
    with rig.ring.session() as s:
        s.execute("CREATE TABLE IF NOT EXISTS ring_fault.w (id int PRIMARY KEY, at double)", timeout=60)
    victim, pod = rig.ring.nodes[1], rig.pod(1)
    writer = QuorumWriter(rig.ring, "ring_fault.w").start()
    try:
        await until(lambda: len(writer.acked) >= 200, "200 acknowledged writes", 120)
        victim.kill()
        await rig.states({pod: "DN", rig.pod(0): "UN", rig.pod(2): "UN"})
        assert rig.record.state == "Degraded" and any(
            r.startswith(f"{pod} is DN") for r in rig.record.reasons
        )
        await views_equal_nodetool(rig, 2)  # DN in both: the failure detector's verdict, read two ways
        during = len(writer.acked)
        await until(
            lambda: writer.since(during) >= 200, "200 more writes with a node down (QUORUM = 2 of 3)", 120
        )
        await asyncio.to_thread(rig.ring.start_node, victim)
        await rig.states(dict.fromkeys(rig.pods, "UN"))
    finally:
        writer.stop()
    # Hints for the writes it missed are replayed to it: no node keeps any for it.
    host_id = rig.record.ring[pod].host_id
    for via in (0, 2):

        def replayed(via: int = via) -> bool:
            return host_id not in rig.ring.nodetool("listpendinghints", via=via)

        await until(replayed, f"no hints pending for {pod} on node {via}", 120, every=2)
    with rig.ring.session() as s:
        read = SimpleStatement(
            "SELECT id FROM ring_fault.w", consistency_level=ConsistencyLevel.ALL, fetch_size=5000
        )
        stored = {row.id for row in s.execute(read, timeout=120)}
        s.execute("DROP KEYSPACE ring_fault", timeout=120)
    assert set(writer.acked) <= stored, f"lost {len(set(writer.acked) - stored)} acknowledged writes"
    await until(lambda: rig.record.state == "Healthy", "Healthy again")
