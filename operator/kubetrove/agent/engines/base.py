"""The engine driver Protocol the agent's routes call, and the errors drivers raise.

Drivers are synchronous (the engine client libraries are); the server runs them in a thread so the
event loop stays free for probes. Every method is idempotent where the HTTP verb says so (PUT).

Identifiers (database and user names) reach a driver already validated by ``agent.names`` for that
engine, and drivers still always quote them with the engine's own quoting: validation is the first
fence, quoting the second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import (
    Engine,
    ErrorCode,
    ErrorLogEntry,
    Grant,
    MembersReply,
    NodeTokens,
    ParametersReply,
    RebuildReply,
    SetMember,
    SlowQuery,
    Status,
    TableCheck,
)


class DriverError(Exception):
    """Base of errors a driver raises; the server maps each subclass to one HTTP status."""

    code: ErrorCode = ErrorCode.ENGINE_ERROR
    http_status = 500


class BadRequest(DriverError):
    code = ErrorCode.BAD_REQUEST
    http_status = 400


class NotFound(DriverError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class Conflict(DriverError):
    code = ErrorCode.CONFLICT
    http_status = 409


class EngineUnavailable(DriverError):
    code = ErrorCode.ENGINE_UNAVAILABLE
    http_status = 503


class Unsupported(DriverError):
    code = ErrorCode.UNSUPPORTED
    http_status = 501


class EngineDriver(Protocol):
    """What every engine driver implements. One line of contract per method."""

    engine: Engine
    # True: the engine writes its error log to its own container's stdout/stderr (``kubectl logs -c
    # engine``), so the agent publishes only its slow log on stdout (``agent.engine_logs``); False: the
    # agent publishes the error log too, as ``kubetrove.engine.error`` lines.
    error_log_in_container_log: bool

    @property
    def config(self) -> EngineConfig:
        """How this driver reaches its engine (the backup tools connect with the same settings)."""
        ...

    def ping(self) -> None:
        """Raise EngineUnavailable unless the engine accepts a connection and answers a trivial query."""
        ...

    def status(self) -> Status:
        """Role, read-only flag, version, positions, lag and health, read from the engine."""
        ...

    def list_databases(self) -> list[str]:
        """User databases (system schemas excluded), sorted."""
        ...

    def ensure_database(self, name: str, replication_factor: int) -> bool:
        """Create the database if missing; return True if it was created."""
        ...

    def drop_database(self, name: str) -> None:
        """Drop the database; raise NotFound if it does not exist."""
        ...

    def ensure_user(self, name: str, password: str, grants: list[Grant]) -> bool:
        """Create or update the user so its password and grants are exactly these; True if created."""
        ...

    def drop_user(self, name: str) -> None:
        """Drop the user; raise NotFound if it does not exist."""
        ...

    def apply_parameters(self, parameters: Mapping[str, str]) -> ParametersReply:
        """Apply dynamic parameters live (values already validated against the catalog)."""
        ...

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        """Replicate from host:port with GTID auto-positioning (or the engine's equivalent); read-only."""
        ...

    def stop_replication(self) -> None:
        """Stop receiving from the source (so an old primary cannot gather acknowledgements)."""
        ...

    def promote(self) -> None:
        """Stop replicating and accept writes."""
        ...

    def fence(self) -> None:
        """Refuse writes from clients (read_only / super_read_only / default_transaction_read_only)."""
        ...

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """Block until ``position`` is applied locally; False when the timeout passes first."""
        ...

    def slow_queries(self, tail: int, since: datetime | None) -> list[SlowQuery]:
        """The newest ``tail`` slow statements at or after ``since``, oldest first, NOT yet redacted;
        Conflict when the engine logs them where the agent cannot read, Unsupported when it never can."""
        ...

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        """The newest ``tail`` entries of the engine's error log at or after ``since``, oldest first, NOT
        yet redacted; Unsupported when the agent cannot read that log (it goes to the container's stderr)."""
        ...


@runtime_checkable
class MembershipDriver(Protocol):
    """A driver of an engine-elected set (MongoDB): it manages the set's membership, not a source.

    Optional (``Capabilities.elected_membership``): the route answers 501 for the other engines (every
    engine whose primary kubetrove chooses, or that has none), so those drivers need no stub.
    """

    def set_members(self, members: Sequence[SetMember]) -> MembersReply:
        """Create the set with ``members``, or change at most one member towards them (only the primary)."""
        ...


@runtime_checkable
class RingDriver(Protocol):
    """A driver of a ring of equals (Cassandra) whose own auth keyspace must follow the ring's size.

    Optional (``Capabilities.ring``): the route answers 501 for the other engines.
    """

    def ensure_ring_replication(self, replication_factor: int) -> bool:
        """Give the ring's system keyspaces (auth first) this factor and repair them; True if changed."""
        ...

    def leave_check(self, nodes_left: int, lowering: list[str]) -> None:
        """Conflict naming every keyspace ``nodes_left`` nodes could not hold, besides the ring's system
        keyspaces and ``lowering``; changes nothing."""
        ...

    def decommission(self) -> None:
        """Leave the ring, streaming this node's ranges to the others; Conflict when a keyspace's factor
        would exceed the nodes left."""
        ...

    def node_tokens(self) -> NodeTokens:
        """This node's host id, address and tokens (recorded with its backup for a ring restore)."""
        ...


@runtime_checkable
class TLSReloadDriver(Protocol):
    """A driver whose engine re-reads its client TLS files live (spec.tls): PostgreSQL's reload, MySQL's
    ``ALTER INSTANCE RELOAD TLS``, MariaDB's ``FLUSH SSL``, MongoDB's ``rotateCertificates``. Optional:
    an engine without it serves a renewed certificate from its next restart."""

    def reload_tls(self) -> None:
        """Have the engine load its certificate, key and CA files again (new connections get them)."""
        ...


@runtime_checkable
class RebuildDriver(Protocol):
    """A driver that can re-provision its member from a donor (``Capabilities.rebuild``; MySQL's clone).

    Optional: the route answers 501 for the other engines (MariaDB has no clone; PostgreSQL's start
    script clones an empty member itself; MongoDB and Cassandra resync on their own).
    """

    def start_rebuild(self, host: str, port: int, user: str, password: str) -> RebuildReply:
        """Check, record what will be discarded, start the rebuild in the background and return at once;
        Conflict when this member must not be rebuilt (writable, the donor itself, a rebuild running)."""
        ...


@runtime_checkable
class TableChecker(Protocol):
    """A driver that can run its engine's consistency check (``Capabilities.consistency_check``)."""

    def check_tables(self, databases: list[str]) -> tuple[str, list[TableCheck]]:
        """The check's name and one result per table of ``databases``."""
        ...
