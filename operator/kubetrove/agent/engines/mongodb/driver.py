"""MongoDB driver (pymongo): databases, users with built-in roles, replica-set status and step-down.

MongoDB elects its own primary (https://www.mongodb.com/docs/manual/core/replica-set-elections/), so
the agent observes and nudges rather than wires replication:

- ``status``: ``hello`` + ``replSetGetStatus``; position is this member's applied optime as
  ``"<ts.time>:<ts.inc>"`` (the oplog Timestamp), lag is the primary's optimeDate minus ours.
- ``set_source`` / ``stop_replication``: 501. Membership is the replica-set config (replSetReconfig),
  one document for the whole set, not a per-member source.
- ``set_members``: ``replSetInitiate`` when the set does not exist yet (``replSetGetConfig`` answers
  NotYetInitialized), else, on the primary only, one ``replSetReconfig`` step (``replset.py``:
  one member added or removed per call, version + 1; a removal that would leave no healthy voting
  majority is refused). A secondary answers 409 (Conflict): only the primary can reconfigure, and the
  caller asks the member that reports itself primary. A member restored from another set's backup
  creates the set from its data (``_adopt_restored``).
- ``apply_parameters``: catalog names through their runtime commands (``parameters.py``).
- ``check_tables``: ``validate`` per collection (restore verification; the stats are ``stats.py``).
- ``promote``: ``replSetStepUp`` (this secondary calls an election; a no-op on the primary).
- ``fence``: ``replSetStepDown``: the primary becomes a secondary and refuses writes, and will not
  stand for election for ``FENCE_SECONDS``. Not ``fsyncLock``: that makes writes *wait* (not fail)
  and is meant for backups. A standalone has no read-only switch: 501.
- Databases exist only while they hold a collection, so ``ensure_database`` creates the marker
  collection ``_kubetrove`` (empty) and ``replication_factor`` is ignored (the set replicates all).
- Users live in ``admin``; grants map to built-in roles per database (read, readWrite, dbOwner) and
  ``updateUser`` replaces the role list, so a PUT leaves exactly the requested roles.

Invariants: every command is a dict whose first key is the command name; names arrive validated by
``agent.names``; the agent never alters its own login or a user holding a role on ``admin``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
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
from kubetrove.agent.engines.mongodb.parameters import live_command
from kubetrove.agent.engines.mongodb.replset import initiate_config, majority_lost, member_hosts, next_step
from kubetrove.agent.protocol import (
    Engine,
    Grant,
    MembershipAction,
    MembersReply,
    ParametersReply,
    Privilege,
    Role,
    SetMember,
    Status,
    TableCheck,
)

DEFAULT_PORT = 27017
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
MARKER_COLLECTION = "_kubetrove"
FENCE_SECONDS = 60
ROLES: Mapping[Privilege, str] = {
    Privilege.READ: "read",
    Privilege.READ_WRITE: "readWrite",
    Privilege.ADMIN: "dbOwner",
}
# Server error codes (https://www.mongodb.com/docs/manual/reference/error-codes/).
USER_NOT_FOUND, NAMESPACE_EXISTS, NOT_YET_INITIALIZED, NOT_WRITABLE_PRIMARY = 11, 48, 94, 10107
UNAUTHORIZED = 13
SERVER_SELECTION_MS = 1000
COMMAND_NOT_FOUND, NOT_IMPLEMENTED = 59, 238  # a command this server (version, build) does not have
# Refusals of replSetInitiate / replSetReconfig that mean "not now, or not here": answered 409 so the
# caller re-observes and asks again (AlreadyInitialized, InvalidReplicaSetConfig, NodeNotFound,
# NewReplicaSetConfigurationIncompatible, ConfigurationInProgress, MaxTimeMSExpired,
# CurrentConfigNotCommittedYet, and NotWritablePrimary: the member stepped down meanwhile).
MEMBERSHIP_REFUSALS = frozenset({23, 93, 74, 103, 109, 50, 308, NOT_WRITABLE_PRIMARY})
# replSetReconfig waits (by default forever) for a majority to install the new config; bounded so the
# agent answers before the operator's HTTP timeout. Past it the next call re-reads the config.
RECONFIG_MAX_TIME_MS = 20_000

Document = Mapping[str, Any]


class CommandFailed(DriverError):
    """The server refused a command; ``mongo_code`` is its error code (or None)."""

    def __init__(self, message: str, mongo_code: int | None) -> None:
        super().__init__(message)
        self.mongo_code = mongo_code


def format_position(ts: Any) -> str:
    """An oplog ``bson.Timestamp`` as the agent's position string ``"<time>:<inc>"``."""
    return f"{ts.time}:{ts.inc}"


def parse_position(position: str) -> tuple[int, int]:
    """``"<time>:<inc>"`` -> a tuple that orders like the oplog; BadRequest if malformed."""
    seconds, sep, inc = position.partition(":")
    if not (sep and seconds.isdigit() and inc.isdigit()):
        raise BadRequest(f"a MongoDB position is '<seconds>:<increment>', not {position!r}")
    return int(seconds), int(inc)


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
        self._client = MongoClient(
            self._config.host,
            self._config.port or DEFAULT_PORT,
            directConnection=True,  # this member, primary or not; never follow the set elsewhere
            authSource="admin",
            connectTimeoutMS=timeout_ms,
            serverSelectionTimeoutMS=selection_ms,
            appname="kubetrove-agent",
            username=self._config.user or None,
            password=self._config.password or None,
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
        try:
            return self._connect()[db].command(dict(cmd))
        except NotPrimaryError as exc:
            # pymongo raises "not writable primary" as an AutoReconnect, but it is the server's answer
            # (its reply document is in ``details``), not a lost connection: keep the code.
            code = exc.details.get("code") if isinstance(exc.details, Mapping) else None
            if code == NOT_WRITABLE_PRIMARY:
                raise CommandFailed(f"mongodb refused {name!r}: {_reason(exc)}", code) from exc
            raise EngineUnavailable(f"mongodb: {type(exc).__name__}: {exc}") from exc
        except ConnectionFailure as exc:  # AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout
            raise EngineUnavailable(f"mongodb: {type(exc).__name__}: {exc}") from exc
        except OperationFailure as exc:
            if exc.code == USER_NOT_FOUND:
                raise NotFound(str(exc)) from exc
            if exc.code in (COMMAND_NOT_FOUND, NOT_IMPLEMENTED):
                raise Unsupported(f"this server does not implement {name!r}: {_reason(exc)}") from exc
            raise CommandFailed(f"mongodb refused {name!r}: {_reason(exc)}", exc.code) from exc
        except PyMongoError as exc:
            raise DriverError(f"mongodb: {type(exc).__name__}: {exc}") from exc

    def _try(self, db: str, cmd: Document, *ok_codes: int) -> Any:
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

    def status(self) -> Status:
        """Role, position and lag from the replica set; ``standalone`` when the server is not in one."""
        hello = self.command("admin", {"hello": 1})
        version = str(self.command("admin", {"buildInfo": 1}).get("version", ""))
        fields: dict[str, Any] = {"role": Role.STANDALONE, "read_only": False, "healthy": True}
        # An uninitiated --replSet member answers isreplicaset without setName: not writable, not standalone.
        if hello.get("setName") or hello.get("isreplicaset"):
            rs = self._try("admin", {"replSetGetStatus": 1}, NOT_YET_INITIALIZED)
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
        self._try(name, {"create": MARKER_COLLECTION}, NAMESPACE_EXISTS)
        return not existed

    def drop_database(self, name: str) -> None:
        """Drop the database with all its collections; NotFound if it is not listed."""
        if name not in self.list_databases():
            raise NotFound(f"database {name!r} does not exist")
        self.command(name, {"dropDatabase": 1})

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

    def _hello(self) -> Document:
        hello: Document = self.command("admin", {"hello": 1})
        if not hello.get("setName"):
            raise Unsupported("not a replica-set member: a standalone mongod has no election to take part in")
        return hello

    def promote(self) -> None:
        """replSetStepUp on a secondary (it calls an election); nothing to do on the primary.

        The voters may refuse it ("Election failed.", seen on 6.0.5 under w:majority writes: a voter
        ahead of the candidate does not vote for it): 409, a refusal for now, and the caller asks again.
        The failed attempt has still raised the term, so the old primary steps down and the set holds
        an ordinary election a few seconds later."""
        if self._hello().get("isWritablePrimary"):
            return
        try:
            self.command("admin", {"replSetStepUp": 1})
        except CommandFailed as exc:
            if "Election failed" not in str(exc):
                raise
            raise Conflict(str(exc)) from exc

    def fence(self) -> None:
        """replSetStepDown on the primary; already fenced (not writable primary) is success."""
        from pymongo.errors import AutoReconnect

        if not self._hello().get("isWritablePrimary"):
            return
        try:
            self._try("admin", {"replSetStepDown": FENCE_SECONDS}, NOT_WRITABLE_PRIMARY)
        except EngineUnavailable as exc:
            # Before 4.2 a step-down closed every connection, ours included: that is success.
            if not isinstance(exc.__cause__, AutoReconnect):
                raise

    def applied_position(self) -> tuple[int, int]:
        """This member's applied optime as (seconds, increment)."""
        rs = self.command("admin", {"replSetGetStatus": 1})
        me = next(m for m in rs["members"] if m.get("self"))
        return me["optime"]["ts"].time, me["optime"]["ts"].inc

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """Poll our applied optime until it reaches ``position``; False when the timeout passes first."""
        self._hello()
        return poll(lambda: self.applied_position() >= parse_position(position), timeout_seconds)

    # -- membership (PUT /v1/replication/members) ------------------------------------------------

    def set_members(self, members: Sequence[SetMember]) -> MembersReply:
        """Initiate the set with ``members``, or (on the primary) change one member towards them."""
        hello = self.command("admin", {"hello": 1})
        if not (hello.get("setName") or hello.get("isreplicaset")):
            raise Unsupported("mongod was not started with --replSet: it cannot form a replica set")
        reply = self._refused_as_conflict({"replSetGetConfig": 1}, NOT_YET_INITIALIZED)
        if reply is None:  # NotYetInitialized: no set yet, this member creates it
            config = initiate_config(self._set_name(), members)
            self._refused_as_conflict({"replSetInitiate": config})
            return MembersReply(
                action=MembershipAction.INITIATED, added=member_hosts(config), complete=True, version=1
            )
        config = reply["config"]
        if not hello.get("setName"):  # a config this member is not in
            return self._adopt_restored(config, members)
        if not hello.get("isWritablePrimary"):
            primary = hello.get("primary") or "none elected yet"
            raise Conflict(
                f"only the primary can reconfigure the set; this member is not (primary: {primary})"
            )
        step = next_step(config, members)
        if step is None:
            return MembersReply(action=MembershipAction.UNCHANGED, complete=True, version=config["version"])
        if step.removed is not None and step.removed == hello.get("me"):
            raise Conflict(
                f"the primary {step.removed} is not among the requested members: step it down first"
            )
        if step.removed is not None:
            lost = majority_lost(step, self.command("admin", {"replSetGetStatus": 1}))
            if lost is not None:
                raise Conflict(lost)
        self._refused_as_conflict({"replSetReconfig": step.config, "maxTimeMS": RECONFIG_MAX_TIME_MS})
        return MembersReply(
            action=MembershipAction.RECONFIGURED,
            added=[step.added] if step.added else [],
            removed=[step.removed] if step.removed else [],
            complete=next_step(step.config, members) is None,
            version=step.config["version"],
        )

    def _adopt_restored(self, config: Document, members: Sequence[SetMember]) -> MembersReply:
        """A member holding another set's config: restored from a backup of that set, or left out of ours.

        A physical backup carries the source set's config (``local.system.replset``) naming the source's
        hosts; mongod started on those files answers "Does not have a valid replica set config". When
        none of those hosts is wanted here, the config belongs to a set that is not this cluster, and
        the set is created from this member's data as ``replSetInitiate`` would create it, by a forced
        ``replSetReconfig`` (the only command that replaces a config a member is not in): nothing of this
        cluster can be rolled back by it. The other members join by initial sync from it. When some
        old host IS wanted, this is a member our own set does not list (yet): only its primary may add
        it, so 409.
        """
        old = member_hosts(config)
        wanted = {m.host for m in members}
        if wanted & set(old):
            raise Conflict(
                f"this member is not in the set's config (members: {', '.join(old)}); the primary adds it"
            )
        new = {**initiate_config(str(config["_id"]), members), "version": int(config["version"]) + 1}
        self._refused_as_conflict({"replSetReconfig": new, "force": True})
        return MembersReply(
            action=MembershipAction.INITIATED,
            added=member_hosts(new),
            removed=old,
            complete=True,
            version=new["version"],
        )

    def _refused_as_conflict(self, cmd: Document, *ok_codes: int) -> Any:
        """``_try`` on admin, with the server's "not now / not here" refusals raised as Conflict (409)."""
        try:
            return self._try("admin", cmd, *ok_codes)
        except CommandFailed as exc:
            if exc.mongo_code in MEMBERSHIP_REFUSALS:
                raise Conflict(str(exc)) from exc
            raise

    def _set_name(self) -> str:
        """The set name mongod runs with (``hello`` of an uninitiated member has no setName)."""
        parsed = self.command("admin", {"getCmdLineOpts": 1}).get("parsed", {})
        replication = parsed.get("replication", {})
        name = replication.get("replSetName") or replication.get("replSet")
        if not name:
            raise Unsupported("mongod reports no replica-set name in getCmdLineOpts")
        return str(name)


def _reason(exc: Any) -> str:
    """The server's own message and code name, without the reply's cluster-time signature and the rest."""
    details = exc.details if isinstance(getattr(exc, "details", None), Mapping) else {}
    message = details.get("errmsg") or str(exc)
    return f"{message} ({details['codeName']})" if details.get("codeName") else str(message)


def poll(reached: Callable[[], bool], timeout_seconds: float, interval: float = 0.2) -> bool:
    """Call ``reached`` until it is true (True) or the deadline passes (False); at least once."""
    deadline = time.monotonic() + timeout_seconds
    while not reached():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
