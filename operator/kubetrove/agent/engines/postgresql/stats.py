"""Row counts and an order-independent md5 over the rows' text per table ("db.schema.table" keys).

Taken on a separate connection while the tool streams, once it has written its first MiB (the runner's
``_SideStats``). Exact when the source is quiet (the operator backs up a replica where it can), an
approximation on a busy primary. Checksums only for tables up to ``CHECKSUM_MAX_BYTES`` (a full scan of a
big table would slow every backup down; bigger tables get row counts only).
"""

from __future__ import annotations

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import CHECKSUM_MAX_BYTES
from kubetrove.agent.protocol import TableStats


def table_stats(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """Per-table stats of ``databases`` ("db.schema.table"); checksums of tables up to CHECKSUM_MAX_BYTES."""
    import psycopg
    from psycopg import sql

    stats: dict[str, TableStats] = {}
    for db in databases:
        with psycopg.connect(
            host=config.host, port=config.port or 5432, user=config.user, password=config.password, dbname=db
        ) as conn:
            tables = conn.execute(
                "SELECT n.nspname, c.relname, pg_relation_size(c.oid) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
                " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_toast%'"
                " ORDER BY 1, 2"
            ).fetchall()
            for schema, table, size in tables:
                ident = sql.Identifier(schema, table)
                row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
                checksum = None
                if size <= CHECKSUM_MAX_BYTES:
                    query = sql.SQL(
                        "SELECT md5(coalesce(string_agg(h, '' ORDER BY h), '')) FROM"
                        " (SELECT md5(t::text) AS h FROM {} t) s"
                    ).format(ident)
                    checksum = conn.execute(query).fetchone()[0]  # type: ignore[index]
                stats[f"{db}.{schema}.{table}"] = TableStats(rows=int(row[0]), checksum=checksum)  # type: ignore[index]
    return stats
