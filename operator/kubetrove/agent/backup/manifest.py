"""The manifest: the JSON object written LAST that makes a stored backup complete, and its key layout."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from kubetrove.agent.protocol import BackupMethod, NodeTokens, TableStats

FORMAT = 1
MANIFEST_NAME = "manifest.json"


class Artifact(BaseModel):
    """One stored stream (a tool's whole stdout): its object name inside the backup, size and digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    database: str | None = None  # per-database logical dumps (PostgreSQL pg_dump -Fc)


class Manifest(BaseModel):
    """What a restore needs to refuse early and to verify: engine, major version, digests, table stats."""

    # extra="ignore": a newer agent may add fields; an older restore must still read what it knows.
    model_config = ConfigDict(extra="ignore", frozen=True)

    format: int = FORMAT
    id: str
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
