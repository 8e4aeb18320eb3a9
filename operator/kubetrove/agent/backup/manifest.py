"""The manifest: the JSON object written LAST that makes a stored backup complete, and its key layout.

A manifest is INPUT FROM THE BACKUP STORE, which whoever holds the bucket's credentials can write: its
artifact names become file names (spooled under a restore's work directory, read from a directory
store) and object keys, so they are checked against a strict pattern here, before anything opens a
file: one path component of plain characters, never ``..``, never absolute. The manifest's own id must
also be the backup asked for (``restore.load_manifest``), so one backup's manifest cannot stand in for
another's.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubetrove.agent.protocol import BACKUP_ID, BackupMethod, NodeTokens, TableStats

FORMAT = 1
MANIFEST_NAME = "manifest.json"
# Every name the engines write: "base.tar", "backup.archive", "<database>.pgdump", "sstables.tar", ...
# One path component; no separator, no leading dot (so neither "." nor ".." nor a hidden file), no NUL.
ARTIFACT_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$"
DATABASE_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$"  # agent.names.PORTABLE: what the API lets create


class Artifact(BaseModel):
    """One stored stream (a tool's whole stdout): its object name inside the backup, size and digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ARTIFACT_NAME)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    database: str | None = Field(default=None, pattern=DATABASE_NAME)  # per-database dumps (pg_dump -Fc)

    @field_validator("name")
    @classmethod
    def _no_parent(cls, name: str) -> str:
        if ".." in name:
            raise ValueError("an artifact name may not contain '..'")
        return name


class Manifest(BaseModel):
    """What a restore needs to refuse early and to verify: engine, major version, digests, table stats."""

    # extra="ignore": a newer agent may add fields; an older restore must still read what it knows.
    model_config = ConfigDict(extra="ignore", frozen=True)

    format: int = FORMAT
    id: str = Field(pattern=BACKUP_ID)
    engine: str
    engine_version: str
    major: str
    method: BackupMethod
    tool: str
    position: str | None = None
    artifacts: list[Artifact] = Field(min_length=1)
    tables: dict[str, TableStats] = Field(default_factory=dict)  # "db.table" -> rows/checksum at backup time
    # A ring node's backup (Cassandra): its host id, address and tokens. A ring restore gives each new
    # node the tokens of the node whose snapshot it loads (initial_token), so it owns the same ranges.
    ring_node: NodeTokens | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None

    @property
    def size(self) -> int:
        """Total stored bytes."""
        return sum(a.size for a in self.artifacts)

    @property
    def sha256(self) -> str:
        """The single artifact's digest; for several, the digest of their "name sha" lines (stable)."""
        if len(self.artifacts) == 1:
            return self.artifacts[0].sha256
        lines = "".join(f"{a.name} {a.sha256}\n" for a in self.artifacts)
        return hashlib.sha256(lines.encode()).hexdigest()


def artifact_key(prefix: str, backup_id: str, name: str) -> str:
    """``<prefix>/<id>/<name>`` without a leading or doubled slash."""
    return "/".join(p for p in (prefix.strip("/"), backup_id, name) if p)
