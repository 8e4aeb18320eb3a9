"""Cassandra parameter catalog: cassandra.yaml settings, by their 4.1+ names.

Cassandra 4.1 renamed settings to carry units in the value (``read_request_timeout: 5000ms`` instead
of ``read_request_timeout_in_ms: 5000``); 4.1 and 5.0 both read the new names. Users give a plain
integer in the unit named in ``UNITS`` and the renderer appends it. ``dynamic`` means nodetool can
change it on a running node (``setconcurrency``, ``setcompactionthroughput``, ``setstreamthroughput``,
``settimeout``, ``setmaxhintwindow``, ``enablehandoff``/``disablehandoff``, ``setcachecapacity``,
``setconcurrentcompactors``); the rest is read at startup.
https://cassandra.apache.org/doc/5.0/cassandra/managing/configuration/cass_yaml_file.html
https://cassandra.apache.org/doc/5.0/cassandra/managing/tools/nodetool/nodetool.html
"""

from __future__ import annotations

from kubetrove.datastores.base import ParameterSpec, ParamType
from kubetrove.datastores.params import catalog

TRUE_FALSE = ("true", "false")
RING_DELAY = "ring_delay"  # a JVM property, not a cassandra.yaml setting (see its entry)
INT_MAX = 2147483647
HOUR_MS = 3_600_000

PARAMETERS = catalog(
    ParameterSpec("concurrent_reads", ParamType.INT, True, 2, 1024, description="read threads"),
    ParameterSpec("concurrent_writes", ParamType.INT, True, 2, 1024, description="write threads"),
    ParameterSpec(
        "concurrent_counter_writes", ParamType.INT, True, 2, 1024, description="counter write threads"
    ),
    ParameterSpec("concurrent_compactors", ParamType.INT, True, 1, 64, description="parallel compactions"),
    ParameterSpec(
        "compaction_throughput", ParamType.INT, True, 0, 10000, description="MiB/s; 0 = unthrottled"
    ),
    ParameterSpec(
        "stream_throughput_outbound", ParamType.INT, True, 0, 10000, description="MiB/s; 0 = unthrottled"
    ),
    ParameterSpec("read_request_timeout", ParamType.INT, True, 10, 600000, description="milliseconds"),
    ParameterSpec("write_request_timeout", ParamType.INT, True, 10, 600000, description="milliseconds"),
    ParameterSpec("range_request_timeout", ParamType.INT, True, 10, 600000, description="milliseconds"),
    ParameterSpec(
        "request_timeout", ParamType.INT, True, 10, 600000, description="milliseconds, other requests"
    ),
    ParameterSpec(
        "hinted_handoff_enabled",
        ParamType.BOOL,
        True,
        allowed=TRUE_FALSE,
        description="store hints for down nodes",
    ),
    ParameterSpec(
        "max_hint_window",
        ParamType.INT,
        True,
        0,
        72 * HOUR_MS,
        description="milliseconds a node may be down and still get hints",
    ),
    ParameterSpec("key_cache_size", ParamType.INT, True, 0, 65536, description="MiB"),
    # Queries slower than this are reported in the node's debug log (no nodetool setter: a restart).
    ParameterSpec("slow_query_log_timeout", ParamType.INT, False, 10, 600000, description="milliseconds"),
    ParameterSpec("batch_size_warn_threshold", ParamType.INT, False, 1, 1048576, description="KiB"),
    ParameterSpec("batch_size_fail_threshold", ParamType.INT, False, 1, 1048576, description="KiB"),
    ParameterSpec(
        "tombstone_warn_threshold",
        ParamType.INT,
        False,
        1,
        INT_MAX,
        description="tombstones per query before a warning",
    ),
    ParameterSpec(
        "tombstone_failure_threshold",
        ParamType.INT,
        False,
        1,
        INT_MAX,
        description="tombstones per query before failing it",
    ),
    ParameterSpec("memtable_heap_space", ParamType.INT, False, 1, 1048576, description="MiB"),
    ParameterSpec("memtable_offheap_space", ParamType.INT, False, 1, 1048576, description="MiB"),
    ParameterSpec(
        "memtable_allocation_type",
        ParamType.ENUM,
        False,
        allowed=("heap_buffers", "offheap_buffers", "offheap_objects"),
        description="where memtables live",
    ),
    ParameterSpec("commitlog_segment_size", ParamType.INT, False, 1, 1024, description="MiB"),
    # Not a cassandra.yaml setting but the JVM property cassandra.ring_delay_ms: the start script
    # (strategy.py) takes its line out of the file and passes it with -D. A node joining, leaving or
    # replacing another sleeps this long twice (to learn the ring, then for pending ranges to settle);
    # Cassandra's default is 30000. A small ring on a fast network settles in a few 1 s gossip rounds.
    ParameterSpec(
        RING_DELAY,
        ParamType.INT,
        False,
        1000,
        300000,
        description="milliseconds a joining or leaving node waits for gossip (cassandra.ring_delay_ms)",
    ),
    ParameterSpec(
        "auto_snapshot",
        ParamType.BOOL,
        False,
        allowed=TRUE_FALSE,
        description="snapshot before TRUNCATE/DROP",
    ),
)

# Unit suffix appended to the integer when rendering (Cassandra 4.1+ value syntax).
UNITS = {
    "compaction_throughput": "MiB/s",
    "stream_throughput_outbound": "MiB/s",
    "read_request_timeout": "ms",
    "write_request_timeout": "ms",
    "range_request_timeout": "ms",
    "request_timeout": "ms",
    "slow_query_log_timeout": "ms",
    "max_hint_window": "ms",
    "key_cache_size": "MiB",
    "batch_size_warn_threshold": "KiB",
    "batch_size_fail_threshold": "KiB",
    "memtable_heap_space": "MiB",
    "memtable_offheap_space": "MiB",
    "commitlog_segment_size": "MiB",
}
