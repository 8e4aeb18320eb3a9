"""Parameters MySQL and MariaDB share with the same meaning, range and dynamism.

Sources: the "Server System Variables" pages of both manuals; ``dynamic`` is their "Dynamic: Yes/No".
https://dev.mysql.com/doc/refman/8.4/en/server-system-variables.html
https://mariadb.com/kb/en/server-system-variables/ and https://mariadb.com/kb/en/innodb-system-variables/
Ranges are the engines' own, narrowed where the engine's extreme is never sane in a pod (sizes are
capped at what a container can hold). A parameter whose range or dynamism differs between the two
engines lives in the engine's own module instead.
"""

from __future__ import annotations

from kubetrove.datastores.base import ParameterSpec, ParamType
from kubetrove.datastores.params import SizeSyntax

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4

# Option files accept K, M, G, T (any case) after an integer: "Using Options to Set Program Variables".
SIZES = SizeSyntax(units={"K": KiB, "M": MiB, "G": GiB, "T": TiB}, case_sensitive=False)
ON_OFF = ("ON", "OFF")
U32 = 4294967295

COMMON: tuple[ParameterSpec, ...] = (
    # Both engines accept 1 (MySQL) or 10 (MariaDB); the operator and agent need a few connections.
    ParameterSpec(
        "max_connections", ParamType.INT, True, 10, 100000, description="maximum client connections"
    ),
    ParameterSpec(
        "max_connect_errors",
        ParamType.INT,
        True,
        1,
        U32,
        description="failed connects before a host is blocked",
    ),
    ParameterSpec(
        "innodb_buffer_pool_size",
        ParamType.SIZE,
        True,
        5 * MiB,
        1 * TiB,
        description="InnoDB page cache; resized online",
    ),
    ParameterSpec(
        "innodb_flush_log_at_trx_commit",
        ParamType.ENUM,
        True,
        allowed=("0", "1", "2"),
        description="redo flush per commit (1 = durable)",
    ),
    ParameterSpec(
        "innodb_io_capacity",
        ParamType.INT,
        True,
        100,
        1000000,
        description="background I/O operations per second",
    ),
    ParameterSpec(
        "innodb_lock_wait_timeout",
        ParamType.INT,
        True,
        1,
        1073741824,
        description="seconds a row lock wait may take",
    ),
    ParameterSpec(
        "innodb_print_all_deadlocks", ParamType.BOOL, True, allowed=ON_OFF, description="log every deadlock"
    ),
    ParameterSpec(
        "sync_binlog",
        ParamType.INT,
        True,
        0,
        U32,
        description="binlog fsync every N commit groups (1 = durable)",
    ),
    ParameterSpec(
        "binlog_expire_logs_seconds", ParamType.INT, True, 0, U32, description="binary log retention"
    ),
    ParameterSpec(
        "long_query_time", ParamType.FLOAT, True, 0, 31536000, description="slow query threshold, seconds"
    ),
    ParameterSpec("slow_query_log", ParamType.BOOL, True, allowed=ON_OFF, description="log slow queries"),
    ParameterSpec(
        "max_allowed_packet", ParamType.SIZE, True, 1 * KiB, 1 * GiB, description="largest packet or row"
    ),
    ParameterSpec(
        "wait_timeout",
        ParamType.INT,
        True,
        1,
        31536000,
        description="idle seconds before a connection is closed",
    ),
    ParameterSpec(
        "interactive_timeout",
        ParamType.INT,
        True,
        1,
        31536000,
        description="wait_timeout for interactive clients",
    ),
    ParameterSpec(
        "table_open_cache", ParamType.INT, True, 1, 524288, description="open tables cached for all threads"
    ),
    ParameterSpec("thread_cache_size", ParamType.INT, True, 0, 16384, description="threads kept for reuse"),
    ParameterSpec(
        "tmp_table_size",
        ParamType.SIZE,
        True,
        1 * KiB,
        64 * GiB,
        description="in-memory internal temporary table limit",
    ),
    ParameterSpec(
        "max_heap_table_size", ParamType.SIZE, True, 16 * KiB, 64 * GiB, description="MEMORY table size limit"
    ),
    ParameterSpec(
        "transaction_isolation",
        ParamType.ENUM,
        True,
        allowed=("READ-UNCOMMITTED", "READ-COMMITTED", "REPEATABLE-READ", "SERIALIZABLE"),
        description="default isolation level",
    ),
    ParameterSpec(
        "character_set_server",
        ParamType.ENUM,
        True,
        allowed=("utf8mb4", "utf8mb3", "latin1", "ascii", "binary"),
        description="default character set",
    ),
    ParameterSpec(
        "collation_server", ParamType.STRING, True, description="default collation, e.g. utf8mb4_unicode_ci"
    ),
    ParameterSpec("sql_mode", ParamType.STRING, True, description="comma-separated SQL modes"),
    ParameterSpec(
        "performance_schema",
        ParamType.BOOL,
        False,
        allowed=ON_OFF,
        description="enable the Performance Schema",
    ),
)
