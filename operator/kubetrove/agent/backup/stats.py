"""Row counts and checksums per table, recorded in the manifest so a verification restore can compare.

Taken on a separate connection while the tool streams, once it has written its first MiB (runner.py's
``_SideStats``: a full ``COUNT(*)`` of a 1 GiB table takes seconds, and it used to delay every backup's
start; waiting for the first MiB keeps it clear of a dump tool's ``FLUSH TABLES WITH READ LOCK``). Exact
when the source is quiet (the operator backs up a replica where it can), an approximation on a busy
primary, as before. Checksums are engine digests:
``CHECKSUM TABLE`` for the MySQL family (https://mariadb.com/kb/en/checksum-table/), an order-independent
md5 over the rows' text for PostgreSQL; only for tables up to ``CHECKSUM_MAX_BYTES`` (a full scan of a
big table would slow every backup down; bigger tables get row counts only).
Engines without a cheap exact count (MongoDB, Cassandra) record nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import TableStats

MYSQL_SYSTEM = ("mysql", "information_schema", "performance_schema", "sys")
CHECKSUM_MAX_BYTES = 64 * 1024 * 1024


def _mysql_family(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    import pymysql  # lazily: an agent image carries only its own engine's client library

    conn = pymysql.connect(
        host=config.host,
        port=config.port or 3306,
        user=config.user,
        password=config.password,
        autocommit=True,
    )
    stats: dict[str, TableStats] = {}
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT table_schema, table_name, data_length FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE' AND table_schema IN %s ORDER BY 1, 2",
                (tuple(databases) or ("",),),
            )
            for schema, table, size in list(cur.fetchall()):
                name = f"`{schema.replace('`', '``')}`.`{table.replace('`', '``')}`"
                cur.execute(f"SELECT COUNT(*) FROM {name}")
                rows = int(cur.fetchone()[0])
                checksum = None
                if (size or 0) <= CHECKSUM_MAX_BYTES:
                    cur.execute(f"CHECKSUM TABLE {name}")
                    checksum = cur.fetchone()[1]
                stats[f"{schema}.{table}"] = TableStats(
                    rows=rows, checksum=None if checksum is None else str(checksum)
                )
    finally:
        conn.close()
    return stats


def _postgresql(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
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


def _none(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    return {}


COLLECTORS: Mapping[str, Callable[[EngineConfig, list[str]], dict[str, TableStats]]] = {
    "mariadb": _mysql_family,
    "mysql": _mysql_family,
    "postgresql": _postgresql,
    "mongodb": _none,
    "cassandra": _none,
}


def table_stats(engine: str, config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """Per-table stats of ``databases`` ("db.table", or "db.schema.table" for PostgreSQL)."""
    return COLLECTORS.get(engine, _none)(config, databases)
