"""PostgreSQL parameter catalog.

``dynamic`` follows ``pg_settings.context``: ``postmaster`` needs a restart; ``sighup``, ``superuser``
and ``user`` apply on reload (the agent runs ``pg_reload_conf()``). Ranges are pg_settings'
``min_val``/``max_val``, narrowed where the extreme is never sane in a pod.
https://www.postgresql.org/docs/current/runtime-config.html and ``SELECT name, context, min_val,
max_val FROM pg_settings``. Integers without a unit are in the setting's base unit (named in the
description); sizes must carry a unit (kB, MB, GB, TB), because PostgreSQL reads a bare number in the
setting's own block size (``shared_buffers = 1024`` is 8 MB), a classic surprise.

Hot standby: max_connections, max_worker_processes, max_locks_per_transaction must be at least as large
on a replica as on the primary; every member gets the same file, so only the order of a rolling restart
matters (raise: replicas first; lower: primary first).
"""

from __future__ import annotations

from kubetrove.datastores.base import ParameterSpec, ParamType
from kubetrove.datastores.params import SizeSyntax, catalog

kB, MB, GB, TB = 1024, 1024**2, 1024**3, 1024**4
INT_MAX = 2147483647

# "Parameter Names and Values": memory units kB, MB, GB, TB (case-sensitive).
SIZES = SizeSyntax(units={"kB": kB, "MB": MB, "GB": GB, "TB": TB}, bare_allowed=False)
ON_OFF = ("on", "off")

PARAMETERS = catalog(
    ParameterSpec(
        "max_connections", ParamType.INT, False, 10, 10000, description="maximum client connections"
    ),
    ParameterSpec("shared_buffers", ParamType.SIZE, False, 128 * kB, 1 * TB, description="shared page cache"),
    ParameterSpec(
        "huge_pages",
        ParamType.ENUM,
        False,
        allowed=("off", "on", "try"),
        description="use huge pages for shared memory",
    ),
    ParameterSpec(
        "max_worker_processes", ParamType.INT, False, 0, 262143, description="background worker slots"
    ),
    ParameterSpec(
        "max_locks_per_transaction",
        ParamType.INT,
        False,
        10,
        INT_MAX,
        description="lock table size per transaction",
    ),
    ParameterSpec(
        "wal_buffers", ParamType.SIZE, False, 64 * kB, 1 * GB, description="WAL buffers in shared memory"
    ),
    ParameterSpec(
        "work_mem", ParamType.SIZE, True, 64 * kB, 2 * TB, description="memory per sort/hash operation"
    ),
    ParameterSpec(
        "maintenance_work_mem",
        ParamType.SIZE,
        True,
        1 * MB,
        2 * TB,
        description="memory for VACUUM, CREATE INDEX",
    ),
    ParameterSpec(
        "effective_cache_size",
        ParamType.SIZE,
        True,
        8 * kB,
        16 * TB,
        description="planner's cache size estimate",
    ),
    ParameterSpec(
        "max_wal_size",
        ParamType.SIZE,
        True,
        32 * MB,
        16 * TB,
        description="WAL size that triggers a checkpoint",
    ),
    ParameterSpec(
        "min_wal_size", ParamType.SIZE, True, 32 * MB, 16 * TB, description="WAL kept for recycling"
    ),
    # wal_keep_size is fixed (strategy.FIXED): pg_rewind of an ex-primary needs its WAL.
    ParameterSpec(
        "checkpoint_timeout", ParamType.INT, True, 30, 86400, description="seconds between checkpoints"
    ),
    ParameterSpec(
        "checkpoint_completion_target",
        ParamType.FLOAT,
        True,
        0,
        1,
        description="fraction of the interval to spread a checkpoint",
    ),
    ParameterSpec(
        "random_page_cost",
        ParamType.FLOAT,
        True,
        0,
        1000000,
        description="planner cost of a random page read",
    ),
    ParameterSpec(
        "effective_io_concurrency",
        ParamType.INT,
        True,
        0,
        1000,
        description="concurrent I/O the storage handles",
    ),
    ParameterSpec(
        "default_statistics_target", ParamType.INT, True, 1, 10000, description="ANALYZE sample detail"
    ),
    ParameterSpec(
        "max_parallel_workers", ParamType.INT, True, 0, 1024, description="parallel workers in total"
    ),
    ParameterSpec(
        "max_parallel_workers_per_gather",
        ParamType.INT,
        True,
        0,
        1024,
        description="parallel workers per query node",
    ),
    ParameterSpec("statement_timeout", ParamType.INT, True, 0, INT_MAX, description="milliseconds; 0 = none"),
    ParameterSpec(
        "idle_in_transaction_session_timeout",
        ParamType.INT,
        True,
        0,
        INT_MAX,
        description="milliseconds; 0 = none",
    ),
    ParameterSpec(
        "log_min_duration_statement", ParamType.INT, True, -1, INT_MAX, description="milliseconds; -1 = off"
    ),
    ParameterSpec(
        "log_statement",
        ParamType.ENUM,
        True,
        allowed=("none", "ddl", "mod", "all"),
        description="which statements to log",
    ),
    ParameterSpec(
        "synchronous_commit",
        ParamType.ENUM,
        True,
        allowed=("on", "off", "local", "remote_write", "remote_apply"),
        description="commit durability level",
    ),
    ParameterSpec(
        "autovacuum", ParamType.BOOL, True, allowed=ON_OFF, description="run the autovacuum launcher"
    ),
    ParameterSpec(
        "autovacuum_naptime", ParamType.INT, True, 1, 2147483, description="seconds between autovacuum runs"
    ),
    ParameterSpec(
        "timezone", ParamType.STRING, True, description="session time zone, e.g. UTC or Europe/Paris"
    ),
)

# Base unit of the plain-integer settings (what PostgreSQL assumes without a unit), for messages.
UNITS = {
    "checkpoint_timeout": "s",
    "autovacuum_naptime": "s",
    "statement_timeout": "ms",
    "idle_in_transaction_session_timeout": "ms",
    "log_min_duration_statement": "ms",
}
