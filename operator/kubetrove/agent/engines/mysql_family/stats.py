"""Row counts and ``CHECKSUM TABLE`` per table, for MySQL and MariaDB ("db.table" keys).

Taken on a separate connection while the tool streams, once it has written its first MiB (the runner's
``_SideStats``). Exact when the source is quiet (the operator backs up a replica where it can), an
approximation on a busy primary. Checksums only for tables up to ``CHECKSUM_MAX_BYTES`` (a full scan of a
big table would slow every backup down; bigger tables get row counts only).
https://mariadb.com/kb/en/checksum-table/, https://dev.mysql.com/doc/refman/8.4/en/checksum-table.html.
"""

from __future__ import annotations

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.plans import CHECKSUM_MAX_BYTES
from kubetrove.agent.protocol import TableStats


def table_stats(config: EngineConfig, databases: list[str]) -> dict[str, TableStats]:
    """Per-table stats of ``databases`` ("db.table"); checksums of tables up to CHECKSUM_MAX_BYTES."""
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
