"""Structured logs: one JSON object per line on stderr (the engine's entries on stdout), every known
secret redacted.

Secrets never belong in a log record in the first place (the server logs method, path, status and
timing, never bodies or headers); the ``Redactor`` is the second fence: every secret the process knows
(the API token, the engine password, the passwords of PUT /v1/users bodies) is registered with it, and
any occurrence in a message, argument or traceback is replaced before the line is written.

The engine's own logs, which the agent serves (GET /v1/logs/*), hold statements other clients sent, with
secrets the agent never knew: ``redact_statement`` replaces the literal after the clauses that carry a
password (``IDENTIFIED BY '...'``, ``PASSWORD '...'``, ``MASTER_PASSWORD = '...'``, MongoDB's
``"pwd": "..."``) before the known secrets are scrubbed as well (``Redactor.scrub_statement``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any

from kubetrove.agent.protocol import ENGINE_LOGGER

REDACTED = "***"
# A quoted literal: '...' or "..." with backslash escapes or doubled quotes inside.
_LITERAL = r"'(?:[^'\\]|\\.|'')*'" + r'|"(?:[^"\\]|\\.|"")*"'
# The clauses whose next literal is a password (case-insensitive), in MySQL, MariaDB, PostgreSQL and CQL:
# IDENTIFIED BY | IDENTIFIED WITH <plugin> BY | AS (a hash), [ENCRYPTED] PASSWORD, PASSWORD(...),
# MASTER_PASSWORD =, SOURCE_PASSWORD =, each a word of its own (after a space, comma or parenthesis: not
# the end of a literal such as 'my-password'); and MongoDB's "pwd" field in a command's JSON.
_PASSWORD_LITERAL = re.compile(
    rf"(?i)((?<![^\s,(])(?:IDENTIFIED\s+(?:WITH\s+(?:{_LITERAL}|\S+)\s+)?(?:BY|AS)|\w*PASSWORD)|[\"']pwd[\"'])"
    rf"(\s*[=:(]?\s*)({_LITERAL})"
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class Redactor:
    """A thread-safe set of secret strings, scrubbed from text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Register a secret; very short strings are ignored (they would redact ordinary words)."""
        if len(secret) >= 4:
            with self._lock:
                self._secrets.add(secret)

    def discard(self, secret: str) -> None:
        """Forget a secret (a user's password once its request is done)."""
        with self._lock:
            self._secrets.discard(secret)

    def scrub(self, text: str) -> str:
        """Return ``text`` with every registered secret replaced by ``***``."""
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text

    def scrub_statement(self, text: str) -> str:
        """``text`` from an engine's log: password literals (``redact_statement``), then known secrets."""
        return self.scrub(redact_statement(text))


def redact_statement(text: str) -> str:
    """``text`` with the literal of every password clause replaced by ``'***'`` (clause and quotes kept)."""
    return _PASSWORD_LITERAL.sub(lambda m: f"{m[1]}{m[2]}{m[3][0]}{REDACTED}{m[3][0]}", text)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: ts, level, logger, msg, extra fields, exception."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Scrub BEFORE json.dumps: escaping rewrites a secret holding '"', '\\' or non-ASCII characters
        # ('\\"', '\\u00e4'), so the escaped line no longer contains it as registered.
        return json.dumps(self._scrubbed(entry), default=lambda v: self.redactor.scrub(str(v)))

    def _scrubbed(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redactor.scrub(value)
        if isinstance(value, dict):
            return {self._scrubbed(str(k)): self._scrubbed(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._scrubbed(v) for v in value]
        return value  # numbers, booleans, None; anything else goes through json's default (scrubbed)


class EngineEntryFormatter(JsonFormatter):
    """Format an engine log entry the agent publishes (``agent.engine_logs``): ts, logger, then the
    entry's own fields (``extra={"engine_entry": {...}}``), redacted like every line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": _timestamp(record), "logger": record.name, **getattr(record, "engine_entry", {})}
        return json.dumps(self._scrubbed(entry), default=lambda v: self.redactor.scrub(str(v)))


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def setup_engine_log_output(redactor: Redactor, stream: Any = None) -> logging.Handler:
    """Send the engine's entries (loggers under ``kubetrove.engine``) to ``stream`` (stdout), one JSON
    object a line, and not to the agent's own log on stderr; return the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(EngineEntryFormatter(redactor))
    engine = logging.getLogger(ENGINE_LOGGER)
    for old in list(engine.handlers):
        engine.removeHandler(old)
    engine.addHandler(handler)
    engine.setLevel(logging.INFO)  # the entries are the point: the agent's --log-level does not hide them
    engine.propagate = False
    return handler


def setup_logging(redactor: Redactor, level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) as redacted JSON lines; return the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
