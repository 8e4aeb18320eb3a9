"""Cassandra physical restore: turn an extracted ``nodetool snapshot`` tar into data a NEW node loads.

The backup tar (backup.py ``CassandraMethods``) holds ``[data/]<keyspace>/<table>-<id>/snapshots/<tag>/*``
relative to the node's data volume. Cassandra only loads SSTables that sit directly in a table directory
(and secondary-index SSTables in its ``.<index>/`` subdirectories), so this step, run on the staging dir
before the engine starts, moves every ``snapshots/<tag>/*`` up into its table directory. It is the
documented "restoring from a snapshot" procedure done on a stopped, empty node:
https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/backups.html

What is kept and why (checked on a real 5.0 node by tests/integration/test_backup_cassandra.py):
- ``system_schema``: the schema AND the table ids. A table directory is named ``<table>-<id>``; a new node
  that loaded a schema from ``schema.cql`` would mint new ids and never look in the restored directories.
  Loading system_schema's own SSTables gives the new node the source's keyspaces, tables, types and ids.
- every other keyspace: user data, ``system_auth`` (roles and their hashed passwords, like the MySQL
  family's ``mysql.user`` in their physical backups), ``system_distributed`` and ``system_traces``.
- dropped: ``system``, the node-local keyspace (host id, tokens, peers, cluster name, saved positions).
  Restored, it would make the new node impersonate the source (same host id and tokens) and believe in
  peers it cannot reach; without it the node starts as a brand-new member and creates its own.
- dropped: each snapshot's ``manifest.json`` and ``schema.cql`` (the snapshot's listing and a CQL copy of
  the schema, kept for humans): not SSTable components, they do not belong in a table directory.

Invariants: a single node owns every token range, so a snapshot of a one-node instance is the whole data
set and the new node (any tokens) serves all of it. In a ring, each node's snapshot is placed on a new node
given the same tokens (the restore writes them beside the data, agent/backup/restore.py RING_TOKENS_FILE,
and the start script sets ``initial_token``); streaming with ``sstableloader`` is not supported.
Errors are ValueError (the backup is not a usable Cassandra snapshot); the caller refuses the restore.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

SNAPSHOTS = "snapshots"
NODE_LOCAL_KEYSPACES = frozenset({"system"})
SCHEMA_KEYSPACE = "system_schema"
NOT_SSTABLES = frozenset({"manifest.json", "schema.cql"})
# A table directory: the table name, a dash, the table id as 32 hex digits (so a keyspace or table that
# happens to be called "snapshots" is never taken for a snapshot directory).
TABLE_DIR = re.compile(r"\w+-[0-9a-f]{32}")


def _snapshot_dirs(staging: Path) -> list[Path]:
    """Every ``<keyspace>/<table>-<id>/snapshots/<tag>`` directory under ``staging``, sorted."""
    return sorted(
        p
        for p in staging.rglob(f"{SNAPSHOTS}/*")
        if p.is_dir() and p.parent.name == SNAPSHOTS and TABLE_DIR.fullmatch(p.parents[1].name)
    )


def relayout(staging: Path) -> None:
    """Move snapshot SSTables into their table dirs, drop the node-local ``system`` keyspace (see above)."""
    snapshots = _snapshot_dirs(staging)
    keyspaces = {snap.parents[2].name for snap in snapshots}
    if SCHEMA_KEYSPACE not in keyspaces:
        found = ", ".join(sorted(keyspaces)) or "none"
        raise ValueError(
            f"the backup holds no {SCHEMA_KEYSPACE} snapshot (keyspaces: {found}): a new node could not"
            " know its tables"
        )
    for snap in snapshots:
        table = snap.parents[1]
        if table.parent.name in NODE_LOCAL_KEYSPACES:
            continue  # removed with its keyspace below
        for entry in sorted(snap.iterdir()):
            if entry.name in NOT_SSTABLES:
                entry.unlink()
            elif (table / entry.name).exists():
                # One tag per backup, and the tar only holds snapshot dirs: a clash means a foreign layout.
                raise ValueError(f"{entry.relative_to(staging)} would replace {table / entry.name}")
            else:
                entry.rename(table / entry.name)
        snap.rmdir()
        if not any(snap.parent.iterdir()):
            snap.parent.rmdir()
    for keyspace in {snap.parents[2] for snap in snapshots}:
        if keyspace.name in NODE_LOCAL_KEYSPACES:
            shutil.rmtree(keyspace)
