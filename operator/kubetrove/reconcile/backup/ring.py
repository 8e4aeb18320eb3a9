"""A ring's backup (``HAMode.NO_PRIMARY``, Cassandra): one snapshot per node, the rules (pure).

A ring node holds only the ranges its tokens own (and their replicas), so no single node's snapshot is the
data set. A DatabaseBackup of a ring therefore asks EVERY member's agent for a backup of its own node,
stored under its own id ``<uid>-<ordinal>``; each manifest records who the node was (host id, address,
tokens) and the ring-wide row count of every table (agent/engines/cassandra). ``status.nodes`` lists the
node backups in member order; the DatabaseBackup is Completed when every node's is, Failed as soon as
one fails (its error named), Running otherwise.

Consistency: the snapshots are taken at about the same time, not at one instant (Cassandra has no
ring-wide snapshot); a write acknowledged while they run may be in some replicas' snapshots and not in
others, as after any node restore. The restore (reconcile/backup/restore.py) gives member ``i`` of a new
ring of the SAME size the snapshot of node ``i`` and its tokens, so every range's data lands where the
new ring looks for it. https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/backups.html
"""

from __future__ import annotations

from collections.abc import Sequence

from kubetrove.agent.protocol import BackupPhase as WirePhase
from kubetrove.agent.protocol import BackupReply
from kubetrove.api.backup import BackupPhase, NodeBackup


def node_backup_id(uid: str, ordinal: int) -> str:
    """The stored id of member ``ordinal``'s snapshot in the backup whose DatabaseBackup uid is ``uid``."""
    return f"{uid}-{ordinal}"


def node_status(pod: str, reply: BackupReply) -> NodeBackup:
    """One node's entry of ``status.nodes`` from its agent's reply."""
    who = reply.ring_node
    return NodeBackup(
        pod=pod,
        id=reply.id,
        phase=BackupPhase(reply.phase.value),
        host_id=who.host_id if who else None,
        address=who.address if who else None,
        tokens=len(who.tokens) if who else None,
        size_bytes=reply.size_bytes,
        sha256=reply.sha256,
        location=reply.location,
        error=reply.error,
    )


def combined(pods: Sequence[str], replies: Sequence[BackupReply]) -> BackupReply:
    """One reply standing for the whole ring (phase, times, sizes), from the nodes' replies in order.

    Failed when any node failed (every failed node named), Completed when all did, else Running. The size
    is the sum; there is no single checksum (each node's is in ``status.nodes``); the location is node
    0's (each node's is in ``status.nodes``); a node backup without its host id and tokens fails the
    whole (the ring could not be put back together from it).
    """
    first = replies[0]
    pairs = list(zip(pods, replies, strict=True))
    failed = [f"{pod}: {r.error or 'failed'}" for pod, r in pairs if r.phase is WirePhase.FAILED]
    done = all(r.phase is WirePhase.COMPLETED for r in replies)
    failed += [
        f"{pod}: its backup does not say which node and tokens it holds"
        for pod, r in pairs
        if r.phase is WirePhase.COMPLETED and r.ring_node is None
    ]
    phase = WirePhase.FAILED if failed else WirePhase.COMPLETED if done else WirePhase.RUNNING
    ended = phase is WirePhase.COMPLETED
    return first.model_copy(
        update={
            "phase": phase,
            "started_at": min((r.started_at for r in replies if r.started_at), default=None),
            "completed_at": max((r.completed_at or "" for r in replies), default=None) if ended else None,
            "size_bytes": sum(r.size_bytes or 0 for r in replies) if ended else None,
            "sha256": None,
            "position": None,
            "ring_node": None,
            "throughput_mib_per_s": None,
            "error": "; ".join(failed) if failed else None,
        }
    )
