"""mongod's own log as the agent reads it: ``getLog: "global"``, the newest lines mongod keeps in memory.

mongod (4.4+) writes structured JSON lines (``{"t": {"$date": ...}, "s": "I", "c": "NETWORK", "msg": ...,
"attr": {...}}``) to its log destination (the container's stdout) and keeps the most recent 1024 of them
in memory, where ``getLog`` reads them without a file.
https://www.mongodb.com/docs/manual/reference/command/getLog/ and
https://www.mongodb.com/docs/manual/reference/log-messages/#structured-logging.

Pure: ``entry`` reads one line; unit-tested on literals.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kubetrove.agent.protocol import ErrorLogEntry

COMMAND = {"getLog": "global"}
# The severity letters of structured logs; D1-D5 are debug levels.
SEVERITIES = {"F": "Fatal", "E": "Error", "W": "Warning", "I": "Info"}


def entry(line: str) -> ErrorLogEntry:
    """One log line as an ErrorLogEntry: ``[component] msg {attr}``; a line that is not JSON is kept whole."""
    try:
        record: dict[str, Any] = json.loads(line)
    except ValueError:
        return ErrorLogEntry(message=line)
    date = record.get("t", {}).get("$date") if isinstance(record.get("t"), dict) else None
    attr = record.get("attr")
    text = f"[{record.get('c', '-')}] {record.get('msg', '')}"
    if attr:
        text += " " + json.dumps(attr, ensure_ascii=False)
    severity = str(record.get("s", ""))
    return ErrorLogEntry(
        time=datetime.fromisoformat(date) if isinstance(date, str) else None,
        level=SEVERITIES.get(severity, "Debug" if severity.startswith("D") else severity or None),
        message=text,
    )
