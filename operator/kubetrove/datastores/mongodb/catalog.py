"""MongoDB parameter catalog: mongod configuration-file options, by their dotted YAML path.

Names are the paths in the configuration file (``net.maxIncomingConnections``), and server parameters
are ``setParameter.<name>``; the renderer nests them. ``dynamic`` means the agent can apply the value
on a running mongod: server parameters marked "available at runtime" in the manual (``setParameter``
command), the profiler settings (``profile`` command) and the oplog size (``replSetResizeOplog``).
Everything else is read at startup only.
https://www.mongodb.com/docs/manual/reference/configuration-options/
https://www.mongodb.com/docs/manual/reference/parameters/
"""

from __future__ import annotations

from kubetrove.datastores.base import ParameterSpec, ParamType
from kubetrove.datastores.params import catalog

TRUE_FALSE = ("true", "false")
COMPRESSORS = ("none", "snappy", "zlib", "zstd")
INT_MAX = 2147483647

PARAMETERS = catalog(
    ParameterSpec(
        "net.maxIncomingConnections",
        ParamType.INT,
        False,
        1,
        1000000,
        description="maximum client connections",
    ),
    ParameterSpec(
        "storage.wiredTiger.engineConfig.cacheSizeGB",
        ParamType.FLOAT,
        False,
        0.25,
        10000,
        description="WiredTiger cache, GB",
    ),
    ParameterSpec(
        "storage.wiredTiger.engineConfig.journalCompressor",
        ParamType.ENUM,
        False,
        allowed=COMPRESSORS,
        description="journal compression",
    ),
    ParameterSpec(
        "storage.wiredTiger.collectionConfig.blockCompressor",
        ParamType.ENUM,
        False,
        allowed=COMPRESSORS,
        description="compression of new collections",
    ),
    ParameterSpec(
        "replication.oplogSizeMB",
        ParamType.INT,
        True,
        990,
        1073741824,
        description="oplog size; resized online",
    ),
    ParameterSpec(
        "operationProfiling.mode",
        ParamType.ENUM,
        False,
        allowed=("off", "slowOp", "all"),
        description="profiler level",
    ),
    ParameterSpec(
        "operationProfiling.slowOpThresholdMs",
        ParamType.INT,
        True,
        0,
        INT_MAX,
        description="slow operation threshold, ms",
    ),
    ParameterSpec(
        "operationProfiling.slowOpSampleRate",
        ParamType.FLOAT,
        True,
        0,
        1,
        description="fraction of slow operations logged",
    ),
    ParameterSpec(
        "setParameter.cursorTimeoutMillis",
        ParamType.INT,
        True,
        1,
        INT_MAX,
        description="idle cursor timeout, ms",
    ),
    ParameterSpec(
        "setParameter.transactionLifetimeLimitSeconds",
        ParamType.INT,
        True,
        1,
        INT_MAX,
        description="transaction lifetime limit",
    ),
    ParameterSpec(
        "setParameter.maxTransactionLockRequestTimeoutMillis",
        ParamType.INT,
        True,
        -1,
        INT_MAX,
        description="lock wait in a transaction, ms",
    ),
    ParameterSpec("setParameter.logLevel", ParamType.INT, True, 0, 5, description="log verbosity"),
    ParameterSpec(
        "setParameter.notablescan",
        ParamType.BOOL,
        True,
        allowed=TRUE_FALSE,
        description="refuse collection scans",
    ),
    ParameterSpec(
        "setParameter.ttlMonitorEnabled",
        ParamType.BOOL,
        True,
        allowed=TRUE_FALSE,
        description="run the TTL monitor",
    ),
    ParameterSpec(
        "setParameter.diagnosticDataCollectionEnabled",
        ParamType.BOOL,
        True,
        allowed=TRUE_FALSE,
        description="collect FTDC data",
    ),
    ParameterSpec(
        "setParameter.enableFlowControl",
        ParamType.BOOL,
        True,
        allowed=TRUE_FALSE,
        description="throttle writes on lag",
    ),
    ParameterSpec(
        "setParameter.flowControlTargetLagSeconds",
        ParamType.INT,
        True,
        1,
        INT_MAX,
        description="majority lag flow control aims for",
    ),
    ParameterSpec(
        "setParameter.maxIndexBuildMemoryUsageMegabytes",
        ParamType.INT,
        True,
        50,
        1048576,
        description="memory for index builds, MB",
    ),
)
