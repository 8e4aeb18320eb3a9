"""Whether a node may leave the ring: the keyspaces whose replication factor the nodes left could not hold.

Pure (the driver reads ``system_schema.keyspaces`` and hands the rows in). Two callers:
- ``POST /v1/ring/decommission/check`` (the operator asks BEFORE it changes anything for a scale-down to
  ``nodes_left`` nodes): the ring's replicated system keyspaces and the keyspaces the operator will lower
  first are exempt, so a refusal names only what blocks the scale-down and nothing has been lowered yet;
- ``POST /v1/ring/decommission`` (the leave itself): nothing is exempt, the ring as it is must fit.
Cassandra 4.0+ refuses a decommission too ("Not enough live nodes to maintain replication factor"), but
only after the call and naming one keyspace; checking first names every one and touches nothing.
https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/topo_changes.html#removing-nodes
Node-local keyspaces (LocalStrategy: system, system_schema) have no factor and never block.

Whether the leave is DONE is the node's operation mode (``nodetool netstats``' first line, ``Mode: X``),
not nodetool's exit code: Cassandra 5.0's StorageService.decommission returns at once, successfully, when
the node is already leaving ("This node is still decommissioning"), so a second caller would take a node
that is still streaming for a node that has left, and its pod would be deleted mid-stream (seen on pods,
2026-12-07: the ring was left with a down, leaving node and the superuser's QUORUM reads failed).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping


def factor(replication: Mapping[str, str]) -> int:
    """The total replication factor of a replication map (SimpleStrategy's, or the sum over DCs)."""
    if "replication_factor" in replication:
        return int(replication["replication_factor"])
    return sum(int(v) for k, v in replication.items() if k != "class" and v.isdigit())


def refusal(
    keyspaces: Iterable[tuple[str, Mapping[str, str]]], nodes_left: int, exempt: Collection[str] = ()
) -> str | None:
    """Why ``nodes_left`` nodes cannot hold these keyspaces (every one named, sorted), or None if they can."""
    over = sorted(
        (name, f)
        for name, replication in keyspaces
        if name not in exempt and (f := factor(replication)) > nodes_left
    )
    if not over:
        return None
    named = ", ".join(f"{name} (replication factor {f})" for name, f in over)
    nodes = f"{nodes_left} node{'s' if nodes_left != 1 else ''}"
    return (
        f"decommission refused: {nodes} would be left, fewer than the replication factor of {named};"
        " lower those factors first"
    )


DECOMMISSIONED = "DECOMMISSIONED"


def operation_mode(netstats: str) -> str | None:
    """The node's operation mode from ``nodetool netstats``' output (NORMAL, LEAVING, DECOMMISSIONED...)."""
    for line in netstats.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Mode":
            return value.strip() or None
    return None
