"""Which command applies a MongoDB catalog parameter to a running mongod (pure; unit-tested on literals).

The operator sends the catalog's names (``datastores/mongodb/catalog.py``): mongod.conf paths such as
``setParameter.cursorTimeoutMillis`` or ``operationProfiling.slowOpThresholdMs``, and only those it marks
dynamic. Each maps to its runtime command:

- ``setParameter.<name>``: ``{setParameter: 1, <name>: value}``
  (https://www.mongodb.com/docs/manual/reference/command/setParameter/); a bare ``<name>`` too;
- ``operationProfiling.slowOpThresholdMs`` / ``slowOpSampleRate``: ``{profile: -1, slowms | sampleRate}``
  (-1 keeps the profiler level; the thresholds are server-wide; https://www.mongodb.com/docs/manual/
  reference/command/profile/);
- ``replication.oplogSizeMB``: ``{replSetResizeOplog: 1, size: MB}`` on a replica-set member (a standalone
  has no oplog; https://www.mongodb.com/docs/manual/reference/command/replSetResizeOplog/).

Anything else is read at start-up only (``None``: the reply lists it under ``needs_restart``). Values are
typed as the commands want them: ``true``/``false`` as booleans, numbers as numbers.
"""

from __future__ import annotations

from typing import Any

SET_PARAMETER = "setParameter."
PROFILER = {
    "operationProfiling.slowOpThresholdMs": "slowms",
    "operationProfiling.slowOpSampleRate": "sampleRate",
}
OPLOG_SIZE = "replication.oplogSizeMB"


def typed(text: str) -> bool | int | float | str:
    """The API carries strings; the commands want the parameter's BSON type."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def live_command(name: str, value: str, replica_set: bool) -> dict[str, Any] | None:
    """The admin command that applies ``name`` now, or None when mongod reads it only at start-up."""
    if name.startswith(SET_PARAMETER) or "." not in name:
        return {"setParameter": 1, name.removeprefix(SET_PARAMETER): typed(value)}
    if name in PROFILER:
        return {"profile": -1, PROFILER[name]: typed(value)}
    if name == OPLOG_SIZE and replica_set:
        return {"replSetResizeOplog": 1, "size": float(value)}
    return None
