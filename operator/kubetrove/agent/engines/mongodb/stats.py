"""Per-collection document counts and ``dbHash`` digests, for MongoDB ("db.collection" keys).

Recorded in the backup manifest while the physical copy streams (under ``fsyncLock`` writes wait, so
they describe exactly the copied files) and taken again on a restored server by ``POST /v1/verify``.

- rows: ``count`` with an empty query hinted to the ``_id`` index, which counts index entries instead of
  trusting the collection's size metadata (that can be off after an unclean shutdown);
  https://www.mongodb.com/docs/manual/reference/command/count/#accuracy-and-sharded-clusters
- checksum: the collection's md5 from ``dbHash``, a hash of its documents in ``_id`` order, the digest
  MongoDB's own tests use to compare replica-set members
  (https://www.mongodb.com/docs/manual/reference/command/dbHash/). Views, ``system.*`` collections and
  collections without an ``_id`` index (capped) have none: they get a count, or are left out.
"""

from __future__ import annotations

from typing import Any

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import TableStats


def table_stats(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """Stats of every collection of ``databases`` ("db.collection")."""
    from pymongo import MongoClient  # lazily: an agent image carries only its own engine's client library

    client: Any = MongoClient(
        config.host,
        config.port or 27017,
        directConnection=True,
        authSource="admin",
        username=config.user or None,
        password=config.password or None,
        serverSelectionTimeoutMS=int(config.connect_timeout * 1000),
    )
    stats: dict[str, TableStats] = {}
    try:
        for name in sorted(databases):
            db = client[name]
            hashes = db.command("dbHash").get("collections", {})
            for info in db.list_collections(filter={"type": "collection"}):
                coll = info["name"]
                if coll.startswith("system."):
                    continue
                rows = db.command({"count": coll, "query": {}, "hint": {"_id": 1}})["n"]
                stats[f"{name}.{coll}"] = TableStats(rows=int(rows), checksum=hashes.get(coll))
    finally:
        client.close()
    return stats
