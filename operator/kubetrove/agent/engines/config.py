"""How a driver reaches its engine: the connection settings ``agent.main`` reads from flags, env and files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EngineConfig:
    """Connection settings for the local engine; ``port=None`` means the engine's default port."""

    host: str = "127.0.0.1"
    port: int | None = None
    user: str = ""
    password: str = field(default="", repr=False)  # never printed: repr() ends up in logs and tracebacks
    database: str | None = None  # the maintenance database (PostgreSQL: "postgres"), if the engine has one
    connect_timeout: float = 5.0
    # The engine serves client TLS (spec.tls; ``--engine-tls-dir``) and may refuse plaintext TCP: the driver's
    # own connections and the replication it configures ask for TLS (each bundle says how).
    tls: bool = False
    options: Mapping[str, str] = field(default_factory=dict)  # engine-specific extras (e.g. TLS files)
