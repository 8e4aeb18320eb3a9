"""The agent's half of a PostgreSQL rejoin: a request file the engine container's start script consumes.

A server that is not a standby cannot become one without a restart (``standby.signal`` is read at
start), and an ex-primary first needs ``pg_rewind`` against the new primary. The agent cannot restart
postgres (it runs in another container), so it writes the new primary's libpq conninfo to the REQUEST
file (``--demoted-marker``, on the data volume the agent mounts read-write). The engine container's
start script (``kubetrove.datastores.postgresql.start``) watches for it, stops postgres (fast
shutdown), runs ``pg_rewind -R`` from that source and starts postgres as its standby, then deletes the
request. When pg_rewind fails, the data is kept and its output lands in the FAILED file beside the
request; the agent reports it (``Status.replication_error``) and refuses further rejoins (409):
the member needs a rebuild (docs/clustering.md, "PostgreSQL").

Invariants: the request is written atomically (a temporary file renamed), so the script never reads
half a conninfo; it is readable by its owner only (it holds the replication password, as
``postgresql.auto.conf`` does); a promotion deletes both files, so a promoted member is never rewound
at its next start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kubetrove.agent.engines.config import EngineConfig

FAILED_NAME = "rewind-failed"  # the start script's REWIND_FAILED_FILE, beside the request
PASSFILE_NAME = "replication.pgpass"  # beside the request: the replication password, for libpq only


def pgpass_field(value: str) -> str:
    """A field of a libpq password file: ``\\`` and ``:`` escaped with a backslash
    (https://www.postgresql.org/docs/15/libpq-pgpass.html)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True)
class RejoinFiles:
    """The request file and its sibling, the record of a failed pg_rewind."""

    request: Path

    @property
    def failed(self) -> Path:
        return self.request.with_name(FAILED_NAME)

    @property
    def passfile(self) -> Path:
        return self.request.with_name(PASSFILE_NAME)

    def write_passfile(self, host: str, port: int, user: str, password: str) -> Path:
        """Write the replication password where ``primary_conninfo``'s ``passfile=`` points, 0600, atomically.

        Why a file: a password inside primary_conninfo is printed by the postmaster on every reload
        ('parameter "primary_conninfo" changed to ...', LOG level). The pod's containers share one uid,
        so postgres reads what the agent writes; an agent running as root (a test harness) hands the file
        to the owner of its directory, the engine's user, as the pod would."""
        self.request.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.passfile.with_name(f".{PASSFILE_NAME}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            fields = (host, str(port), "*", user, password)
            out.write(":".join(pgpass_field(f) for f in fields) + "\n")
        if os.geteuid() == 0:
            owner = self.request.parent.stat()
            os.chown(tmp, owner.st_uid, owner.st_gid)
        tmp.replace(self.passfile)
        return self.passfile

    def ask(self, conninfo: str) -> None:
        """Ask the engine container to rewind from ``conninfo`` and restart as its standby."""
        self.request.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.request.with_name(f".{self.request.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(conninfo + "\n")
        tmp.replace(self.request)

    def pending(self) -> bool:
        """True while a request waits for the engine container."""
        return self.request.exists()

    def failure(self) -> str | None:
        """pg_rewind's output if the last rejoin failed, else None."""
        try:
            text = self.failed.read_text().strip()
        except FileNotFoundError:
            return None
        return text or "pg_rewind failed"

    def clear(self) -> None:
        """Forget any request and failure (the member is promoted, or rebuilt)."""
        self.request.unlink(missing_ok=True)
        self.failed.unlink(missing_ok=True)


def rejoin_files(config: EngineConfig) -> RejoinFiles | None:
    """The files of this pod (``--demoted-marker``), or None outside a pod (a test harness restarts)."""
    path = config.options.get("demoted_marker")
    return RejoinFiles(Path(path)) if path else None
