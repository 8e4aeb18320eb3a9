"""MongoDB driver (pymongo): databases, users with built-in roles, replica-set status and step-down.

MongoDB elects its own primary (https://www.mongodb.com/docs/manual/core/replica-set-elections/), so
the agent observes and nudges rather than wires replication:

- ``status``: ``hello`` + ``replSetGetStatus``; position is this member's applied optime as
  ``"<ts.time>:<ts.inc>"`` (the oplog Timestamp), lag is the primary's optimeDate minus ours.
- ``set_source`` / ``stop_replication``: 501. Membership is the replica-set config (replSetReconfig),
  one document for the whole set, not a per-member source.
- ``set_members``: ``membership.py`` (``replSetInitiate``, else one ``replSetReconfig`` step on the
  primary; a member restored from another set's backup creates the set from its data).
- ``apply_parameters``: catalog names through their runtime commands (``parameters.py``).
- ``check_tables``: ``validate`` per collection (restore verification; the stats are ``stats.py``).
- ``promote`` / ``fence`` / positions: ``switchover.py`` (``replSetStepUp``, ``replSetStepDown``; a
  standalone has neither: 501).
- Server error codes and ``CommandFailed``: ``errors.py``. A command to a mongod the client's monitor
  last found down fails at once (503) instead of waiting out server selection (``_known_down``).
- Databases exist only while they hold a collection, so ``ensure_database`` creates the marker
  collection ``_kubetrove`` (empty) and ``replication_factor`` is ignored (the set replicates all).
- Users live in ``admin``; grants map to built-in roles per database (read, readWrite, dbOwner) and
  ``updateUser`` replaces the role list, so a PUT leaves exactly the requested roles.

Invariants: every command is a dict whose first key is the command name; names arrive validated by
``agent.names``; the agent never alters its own login or a user holding a role on ``admin``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kubetrove.agent.engines.base import (
    BadRequest,
    Conflict,
    DriverError,
    EngineUnavailable,
    NotFound,
    Unsupported,
)
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb import global_log, membership, profile, switchover
from kubetrove.agent.engines.mongodb.errors import (
    COMMAND_NOT_FOUND,
    NAMESPACE_EXISTS,
    NOT_IMPLEMENTED,
    NOT_WRITABLE_PRIMARY,
    NOT_YET_INITIALIZED,
    UNAUTHORIZED,
    USER_NOT_FOUND,
    CommandFailed,
    reason,
)
from kubetrove.agent.engines.mongodb.parameters import live_command
from kubetrove.agent.engines.mongodb.switchover import format_position
from kubetrove.agent.engines.mongodb.tls import tls_options
from kubetrove.agent.protocol import (
    Engine,
    ErrorLogEntry,
    Grant,
    MembersReply,
    ParametersReply,
    Privilege,
    Role,
    SetMember,
    SlowQuery,
    Status,
    TableCheck,
)

DEFAULT_PORT = 27017
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
MARKER_COLLECTION = "_kubetrove"
SERVER_SELECTION_MS = 1000
HEARTBEAT_MS = 500
ROLES: Mapping[Privilege, str] = {
    Privilege.READ: "read",
    Privilege.READ_WRITE: "readWrite",
    Privilege.ADMIN: "dbOwner",
}
Document = Mapping[str, Any]


def replica_set_status(hello: Document, rs: Document) -> dict[str, Any]:
    """Status fields from a member's ``hello`` and ``replSetGetStatus`` replies (pure; unit-tested)."""
    members = rs.get("members", [])
    me: Document = next((m for m in members if m.get("self")), {})
    primary = next((m for m in members if m.get("stateStr") == "PRIMARY"), None)
    writable = bool(hello.get("isWritablePrimary", hello.get("ismaster")))
    role = Role.PRIMARY if writable else Role.REPLICA if hello.get("secondary") else Role.UNKNOWN
    lag: float | None = None
    if role is Role.PRIMARY:
        lag = 0.0
    elif primary is not None and me:
        lag = max(0.0, _seconds_between(me.get("optimeDate"), primary.get("optimeDate")))
    source = me.get("syncSourceHost") or None
    return {
        "role": role,
        "read_only": not writable,
        "healthy": me.get("health", 1) == 1 and me.get("stateStr") in ("PRIMARY", "SECONDARY"),
        "position": format_position(me["optime"]["ts"]) if me.get("optime") else None,
        "lag_seconds": lag,
        "source_host": source,
        "replication_running": role is Role.REPLICA and source is not None,
    }


def _seconds_between(older: datetime | None, newer: datetime | None) -> float:
    if older is None or newer is None:
        return 0.0
    return (newer - older).total_seconds()


class MongoDBDriver:
    """EngineDriver for one mongod."""

    engine = Engine.MONGODB
    error_log_in_container_log = True  # mongod logs to stdout (no systemLog.path)

    def __init__(self, config: EngineConfig, client: Any = None) -> None:
        self._config = config
        self._client = client  # injected by unit tests; built lazily otherwise
        self._own_client = client is None  # only a client built here is ever rebuilt (re-authentication)
        self._lock = threading.Lock()  # routes call drivers from several threads

    @property
    def config(self) -> EngineConfig:
        """The connection settings (the backup routes hand them to mongodump/mongorestore)."""
        return self._config

    def _connect(self) -> Any:
        with self._lock:
            return self._client or self._new_client()

    def _new_client(self) -> Any:
        from pymongo import MongoClient

        timeout_ms = int(self._config.connect_timeout * 1000)
        # Server selection waits only while the monitor cannot reach mongod (down or starting): one
        # second, so a status of a member whose mongod died answers 503 at once instead of after the
        # connect timeout, past the operator's 2 s status probe (which then saw it as unreachable only
        # after 2 s, every cycle, delaying every election's recording).
        selection_ms = min(timeout_ms, SERVER_SELECTION_MS)
        # The monitor checks mongod every HEARTBEAT_MS (pymongo's floor; the default is 10 s): its last
        # check is what ``_known_down`` trusts, so it must be recent.
        self._client = MongoClient(
            self._config.host,
            self._config.port or DEFAULT_PORT,
            directConnection=True,  # this member, primary or not; never follow the set elsewhere
            authSource="admin",
            connectTimeoutMS=timeout_ms,
            serverSelectionTimeoutMS=selection_ms,
            heartbeatFrequencyMS=HEARTBEAT_MS,
            appname="kubetrove-agent",
            username=self._config.user or None,
            password=self._config.password or None,
            # spec.tls: mongod may refuse plaintext (requireTLS). Unverified: this is the pod's own
            # loopback, which the certificate does not name.
            **tls_options(self._config.tls),
        )
        return self._client

    def close(self) -> None:
        """Close the connection pool."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def command(self, db: str, cmd: Document) -> Any:
        """Run one command on ``db``, mapping pymongo errors to the agent's (the only call site).

        Refused as Unauthorized, a command is run once more on fresh connections. Initial sync (a member
        joining a set) replaces the member's users with its sync source's, and connections that logged
        in before it are no longer authenticated ("requires authentication", code 13) while pymongo keeps
        reusing them: seen on mongod 6.0.5 with every secondary's agent, whose status then failed for ever.
        """
        try:
            return self._command(db, cmd)
        except CommandFailed as exc:
            if exc.mongo_code != UNAUTHORIZED or not self._own_client:
                raise
            self.close()
            return self._command(db, cmd)

    def _command(self, db: str, cmd: Document) -> Any:
        from pymongo.errors import ConnectionFailure, NotPrimaryError, OperationFailure, PyMongoError

        name = next(iter(cmd))
        client = self._connect()
        down = _known_down(client) if self._own_client else None  # a unit test's stand-in has no monitor
        if down is not None:
            raise EngineUnavailable(f"mongodb: {down}")
        try:
            return client[db].command(dict(cmd))
        except NotPrimaryError as exc:
            # pymongo raises "not writable primary" as an AutoReconnect, but it is the server's answer
            # (its reply document is in ``details``), not a lost connection: keep the code.
            code = exc.details.get("code") if isinstance(exc.details, Mapping) else None
            if code == NOT_WRITABLE_PRIMARY:
                raise CommandFailed(f"mongodb refused {name!r}: {reason(exc)}", code) from exc
            raise EngineUnavailable(f"mongodb: {type(exc).__name__}: {exc}") from exc
        except ConnectionFailure as exc:  # AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout
            raise EngineUnavailable(f"mongodb: {type(exc).__name__}: {exc}") from exc
        except OperationFailure as exc:
            if exc.code == USER_NOT_FOUND:
                raise NotFound(str(exc)) from exc
            if exc.code in (COMMAND_NOT_FOUND, NOT_IMPLEMENTED):
                raise Unsupported(f"this server does not implement {name!r}: {reason(exc)}") from exc
            raise CommandFailed(f"mongodb refused {name!r}: {reason(exc)}", exc.code) from exc
        except PyMongoError as exc:
            raise DriverError(f"mongodb: {type(exc).__name__}: {exc}") from exc

    def try_command(self, db: str, cmd: Document, *ok_codes: int) -> Any:
        """``command`` that returns None instead of raising for the given server error codes."""
        try:
            return self.command(db, cmd)
        except CommandFailed as exc:
            if exc.mongo_code in ok_codes:
                return None
            raise

    # -- status -----------------------------------------------------------------------------

    def ping(self) -> None:
        """Raise EngineUnavailable unless the server answers ``ping``."""
        self.command("admin", {"ping": 1})

    def reload_tls(self) -> None:
        """``rotateCertificates``: the certificate key file and CA file are read again (4.4+).
        https://www.mongodb.com/docs/manual/reference/command/rotateCertificates/"""
        self.command("admin", {"rotateCertificates": 1})

    def status(self) -> Status:
        """Role, position and lag from the replica set; ``standalone`` when the server is not in one."""
        hello = self.command("admin", {"hello": 1})
        version = str(self.command("admin", {"buildInfo": 1}).get("version", ""))
        fields: dict[str, Any] = {"role": Role.STANDALONE, "read_only": False, "healthy": True}
        # An uninitiated --replSet member answers isreplicaset without setName: not writable, not standalone.
        if hello.get("setName") or hello.get("isreplicaset"):
            rs = self.try_command("admin", {"replSetGetStatus": 1}, NOT_YET_INITIALIZED)
            fields = replica_set_status(hello, rs or {})
        try:  # optional: a login without the serverStatus privilege still gets a status
            current = self.command("admin", {"serverStatus": 1}).get("connections", {}).get("current")
        except CommandFailed:
            current = None
        return Status(engine=self.engine, version=version, connections=current, **fields)

    # -- databases --------------------------------------------------------------------------

    def list_databases(self) -> list[str]:
        """User databases (admin, local and config excluded), sorted."""
        reply = self.command("admin", {"listDatabases": 1, "nameOnly": True})
        return sorted(d["name"] for d in reply["databases"] if d["name"] not in SYSTEM_DATABASES)

    def ensure_database(self, name: str, replication_factor: int) -> bool:
        """Make the database exist by creating its marker collection; True if it was not listed before."""
        existed = name in self.list_databases()
        self.try_command(name, {"create": MARKER_COLLECTION}, NAMESPACE_EXISTS)
        return not existed

    def drop_database(self, name: str) -> None:
        """Drop the database with all its collections; NotFound if it is not listed."""
        if name not in self.list_databases():
            raise NotFound(f"database {name!r} does not exist")
        self.command(name, {"dropDatabase": 1})

    # -- the engine's logs (GET /v1/logs/*) ---------------------------------------------------

    def slow_queries(self, tail: int, since: datetime | None) -> list[SlowQuery]:
        """The newest ``tail`` profiled operations of every database at or after ``since``, oldest first."""
        reply = self.command("admin", {"listDatabases": 1, "nameOnly": True})
        entries: list[SlowQuery] = []
        for name in sorted(d["name"] for d in reply["databases"]):
            if name not in profile.SKIPPED_DATABASES:
                batch = self.command(name, profile.find_command(name, tail, since))["cursor"]["firstBatch"]
                entries += [profile.slow_query(doc) for doc in batch]
        return profile.newest(entries, tail)

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        """The newest ``tail`` lines mongod keeps in memory (``getLog``: its last 1024) at or after
        ``since``, oldest first; the whole log is the engine container's stdout."""
        lines = self.command("admin", global_log.COMMAND).get("log", [])
        entries = [global_log.entry(str(line)) for line in lines]
        if since is not None:
            entries = [e for e in entries if e.time is not None and e.time >= since]
        return entries[-tail:]

    # -- users ------------------------------------------------------------------------------

    def _user(self, name: str) -> Document | None:
        if name == self._config.user:
            raise Conflict(f"user {name!r} is the agent's own login; the agent does not manage it")
        users = self.command("admin", {"usersInfo": {"user": name, "db": "admin"}}).get("users", [])
        if users and any(r.get("db") == "admin" for r in users[0].get("roles", [])):
            raise Conflict(f"user {name!r} holds roles on 'admin'; the agent does not manage it")
        return users[0] if users else None

    def ensure_user(self, name: str, password: str, grants: list[Grant]) -> bool:
        """createUser, or updateUser with the password and exactly these roles; True if created."""
        roles = [{"role": ROLES[p], "db": g.database} for g in grants for p in dict.fromkeys(g.privileges)]
        created = self._user(name) is None
        verb = "createUser" if created else "updateUser"
        self.command("admin", {verb: name, "pwd": password, "roles": roles})
        return created

    def drop_user(self, name: str) -> None:
        """dropUser; NotFound if missing."""
        if self._user(name) is None:
            raise NotFound(f"user {name!r} does not exist")
        self.command("admin", {"dropUser": name})

    # -- verification ----------------------------------------------------------------------

    def check_tables(self, databases: list[str]) -> tuple[str, list[TableCheck]]:
        """``validate`` every collection of ``databases``: its documents and indexes checked against each
        other (https://www.mongodb.com/docs/manual/reference/command/validate/). Not ``full``: that also
        forces a checkpoint and checks WiredTiger's own structures, minutes on big data."""
        out: list[TableCheck] = []
        for db in sorted(databases):
            names = self.command(
                db, {"listCollections": 1, "filter": {"type": "collection"}, "nameOnly": True}
            )
            for info in names["cursor"]["firstBatch"]:
                coll = str(info["name"])
                if coll.startswith("system."):
                    continue
                reply = self.command(db, {"validate": coll})
                problems = [*reply.get("errors", []), *(["not valid"] if not reply.get("valid") else [])]
                out.append(
                    TableCheck(table=f"{db}.{coll}", ok=not problems, message="; ".join(map(str, problems)))
                )
        return "validate", out

    # -- parameters -------------------------------------------------------------------------

    def apply_parameters(self, parameters: Mapping[str, str]) -> ParametersReply:
        """Each catalog parameter through its runtime command (``parameters.live_command``); those mongod
        takes only at start-up are reported as needs_restart, an invalid value is a BadRequest naming it."""
        hello = self.command("admin", {"hello": 1})
        replica_set = bool(hello.get("setName"))
        applied, restart = [], []
        for name, text in sorted(parameters.items()):
            cmd = live_command(name, text, replica_set)
            if cmd is None:
                restart.append(name)
                continue
            try:
                self.command("admin", cmd)
                applied.append(name)
            except CommandFailed as exc:
                if "at runtime" not in str(exc):  # "not allowed to change [x] at runtime" (6.0)
                    raise BadRequest(f"parameter {name!r}: {exc}") from exc
                restart.append(name)
        return ParametersReply(applied=applied, needs_restart=restart)

    # -- replica set ------------------------------------------------------------------------

    def _not_wired(self) -> Unsupported:
        return Unsupported(
            "mongodb elects its own primary; members follow the replica-set config (replSetReconfig), "
            "there is no per-member replication source"
        )

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        """Unsupported: see the module docstring."""
        raise self._not_wired()

    def stop_replication(self) -> None:
        """Unsupported: a secondary cannot stop applying the oplog on request."""
        raise self._not_wired()

    def promote(self) -> None:
        """``replSetStepUp`` (``switchover.promote``)."""
        switchover.promote(self)

    def fence(self) -> None:
        """``replSetStepDown`` (``switchover.fence``)."""
        switchover.fence(self)

    def applied_position(self) -> tuple[int, int]:
        """This member's applied optime (``switchover.applied_position``)."""
        return switchover.applied_position(self)

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """Until our applied optime reaches ``position`` (``switchover.wait_for_position``)."""
        return switchover.wait_for_position(self, position, timeout_seconds)

    # -- membership (PUT /v1/replication/members) ------------------------------------------------

    def set_members(self, members: Sequence[SetMember]) -> MembersReply:
        """Create the set, or change one member towards ``members`` (``membership.set_members``)."""
        return membership.set_members(self, members)


def _known_down(client: Any) -> str | None:
    """The error of the monitor's last check when it failed (mongod down: refused, reset, timed out),
    else None.

    Without this, a command to a dead mongod waits out server selection (SERVER_SELECTION_MS) every
    time, and the membership loop, which asks every member at once and plans when all have answered,
    saw each new primary that much later after every election (benchmarks/failover.py: write gap p50
    6.2 s with the wait). The monitor re-checks every HEARTBEAT_MS, so a mongod that is back is
    believed again within that; before its first check (no error yet) server selection decides.
    """
    servers = client.topology_description.server_descriptions().values()
    errors = [sd.error for sd in servers]
    if errors and all(e is not None for e in errors):
        return f"{type(errors[0]).__name__}: {errors[0]}"
    return None
