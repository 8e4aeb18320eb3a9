"""A real three-node Cassandra 5.0 ring (conftest_ring.py): it forms, and it replicates across nodes."""

from __future__ import annotations

from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from tests.integration.servers.cassandra_ring import Ring


def test_three_nodes_are_up_and_normal_with_their_own_tokens(cassandra_ring3: Ring) -> None:
    for via in range(3):  # every node sees the same ring
        states = cassandra_ring3.status(via=via)
        assert sorted(states) == cassandra_ring3.addresses
        assert {s.state for s in states.values()} == {"UN"}
        assert {s.tokens for s in states.values()} == {16}
        assert len({s.host_id for s in states.values()}) == 3
    ring = cassandra_ring3.nodetool("ring")
    tokens = [line.split()[-1] for line in ring.splitlines() if line.startswith("127.0.0.")]
    assert len(tokens) == 48 and len(set(tokens)) == 48


def test_a_quorum_write_through_one_node_is_read_at_all_through_another(cassandra_ring3: Ring) -> None:
    first, last = (n.server for n in (cassandra_ring3.nodes[0], cassandra_ring3.nodes[2]))
    with first.session() as s:
        s.execute(
            "CREATE KEYSPACE IF NOT EXISTS ring_smoke"
            " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
        )
        s.execute("CREATE TABLE IF NOT EXISTS ring_smoke.kv (k int PRIMARY KEY, v text)")
        insert = s.prepare("INSERT INTO ring_smoke.kv (k, v) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.QUORUM
        for k in range(100):
            s.execute(insert, (k, f"v{k}"))
    with last.session() as s:
        read = SimpleStatement("SELECT k, v FROM ring_smoke.kv", consistency_level=ConsistencyLevel.ALL)
        assert sorted((r.k, r.v) for r in s.execute(read)) == [(k, f"v{k}") for k in range(100)]
        s.execute("DROP KEYSPACE ring_smoke")
