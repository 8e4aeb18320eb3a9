"""Whether a Cassandra node may leave the ring, and whether it has (agent/engines/cassandra/leaving.py)."""

from __future__ import annotations

from kubetrove.agent.engines.cassandra.leaving import DECOMMISSIONED, factor, operation_mode, refusal

SIMPLE3 = {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}
NTS = {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc1": "2", "dc2": "1"}
LOCAL = {"class": "org.apache.cassandra.locator.LocalStrategy"}


def test_a_factor_is_simple_strategys_or_the_sum_over_datacenters() -> None:
    assert (factor(SIMPLE3), factor(NTS), factor(LOCAL)) == (3, 3, 0)


def test_a_refusal_names_every_keyspace_in_the_way_sorted_and_nothing_else() -> None:
    keyspaces = [
        ("shop", SIMPLE3),
        ("ledger", NTS),
        ("system", LOCAL),
        ("small", {"replication_factor": "2"}),
    ]
    assert refusal(keyspaces, 2) == (
        "decommission refused: 2 nodes would be left, fewer than the replication factor of ledger"
        " (replication factor 3), shop (replication factor 3); lower those factors first"
    )
    assert refusal(keyspaces, 3) is None
    assert "1 node would be left" in (refusal(keyspaces, 1) or "")


def test_what_the_caller_lowers_first_is_not_in_the_way() -> None:
    keyspaces = [("system_auth", SIMPLE3), ("shop", SIMPLE3)]
    assert refusal(keyspaces, 2, {"system_auth", "shop"}) is None
    assert "system_auth" not in (refusal(keyspaces, 2, {"system_auth"}) or "")


def test_the_operation_mode_is_netstats_first_line() -> None:
    netstats = "Mode: DECOMMISSIONED\nNot sending any streams.\nRead Repair Statistics:\n"
    assert operation_mode(netstats) == DECOMMISSIONED
    assert operation_mode("Mode: LEAVING\nUnbootstrap 5a1c...\n") == "LEAVING"
    assert operation_mode("nothing useful\n") is None
