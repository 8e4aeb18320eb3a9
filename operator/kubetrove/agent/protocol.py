"""The agent's wire contract: port, paths, request and response models. The ONE place it is defined.

Imported by the agent server (routes), by ``agent.client`` (the operator's client) and, through the
operator's render code, by the pod's probes. Changing a path or a model here changes all three at once.

Versioning: every data route lives under ``/v1``. A breaking change adds ``/v2`` beside it; the operator
speaks the oldest version any running agent serves during an upgrade.

Errors: every non-2xx reply is ``ErrorReply`` JSON ``{"error": <code>, "detail": <text>}``.
Idempotence: PUT twice gives the same state (200 both times); DELETE of a missing object is 404.
"""

from __future__ import annotations

import enum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

PORT = 8432
API_PREFIX = "/v1"
TOKEN_HEADER = "Authorization"  # noqa: S105 (a header name); its value is ``bearer(token)``
TOKEN_FILE_ENV = "KUBETROVE_AGENT_TOKEN_FILE"  # noqa: S105 (a variable name)


def bearer(token: str) -> str:
    """The ``TOKEN_HEADER`` value that presents ``token`` (RFC 6750 section 2.1)."""
    return f"Bearer {token}"


def base_url(host: str, tls_name: str | None = None) -> str:
    """The agent's base URL on ``host`` (a pod IP or DNS name): scheme and port are joined only here.

    With ``tls_name`` the agent serves TLS and its certificate must name ``tls_name`` (the member's DNS
    name: the operator connects to the pod IP, which no certificate can name in advance). The name rides
    in the URL's fragment, which HTTP never sends: ``https://10.0.0.7:8432#db-0.db-headless.ns.svc``;
    ``split_tls_name`` takes it back out."""
    if tls_name:
        return f"https://{host}:{PORT}#{tls_name}"
    return f"http://{host}:{PORT}"


def split_tls_name(url: str) -> tuple[str, str | None]:
    """``(url without fragment, the name its TLS certificate must carry)``; None for plain HTTP or a URL
    without one (an https URL without a name is verified against its own host)."""
    url, _, name = url.partition("#")
    return url, (name or None) if url.startswith("https://") else None


class Paths:
    """Every route of the agent. Templates use aiohttp's ``{name}`` syntax."""

    HEALTHZ = "/healthz"
    READYZ = "/readyz"
    METRICS = "/metrics"
    STATUS = f"{API_PREFIX}/status"
    # The data volume alone, measured without the engine: answered while the engine is down (a full disk).
    VOLUME = f"{API_PREFIX}/volume"
    DATABASES = f"{API_PREFIX}/databases"
    DATABASE = f"{API_PREFIX}/databases/{{name}}"
    USER = f"{API_PREFIX}/users/{{name}}"
    PARAMETERS = f"{API_PREFIX}/parameters"
    REPLICATION_SOURCE = f"{API_PREFIX}/replication/source"
    REPLICATION_PROMOTE = f"{API_PREFIX}/replication/promote"
    REPLICATION_FENCE = f"{API_PREFIX}/replication/fence"
    REPLICATION_STOP = f"{API_PREFIX}/replication/stop"
    REPLICATION_WAIT = f"{API_PREFIX}/replication/wait"
    # Re-provision this member from a donor, discarding what only it holds (engines that can: MySQL's clone).
    REPLICATION_REBUILD = f"{API_PREFIX}/replication/rebuild"
    REPLICATION_MEMBERS = f"{API_PREFIX}/replication/members"  # engine-elected sets (MongoDB) only
    RING_REPLICATION = f"{API_PREFIX}/ring/replication"  # rings (Cassandra) only: the auth keyspace's factor
    RING_DECOMMISSION = f"{API_PREFIX}/ring/decommission"  # rings only: this node leaves, streaming its data
    # Rings only: would a scale-down to N nodes be refused? Changes nothing (a path of its own, not a flag
    # on the decommission: an older agent answers 404 here instead of leaving the ring).
    RING_LEAVE_CHECK = f"{API_PREFIX}/ring/decommission/check"
    BACKUPS = f"{API_PREFIX}/backups"
    BACKUP = f"{API_PREFIX}/backups/{{id}}"
    VERIFY = f"{API_PREFIX}/verify"
    RESTORE = f"{API_PREFIX}/restore"  # progress of spec.restoreFrom in this pod (logical: the agent loads)
    # The engine's own logs, read by the agent (nobody gets a shell): bounded tails, secrets redacted.
    LOGS_SLOW = f"{API_PREFIX}/logs/slow"
    LOGS_ERROR = f"{API_PREFIX}/logs/error"


class Wire(BaseModel):
    """Base of every wire model: unknown fields are refused, so a client/server mismatch is loud."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Engine(enum.StrEnum):
    """The engines an agent can serve: ``--engine``, ``Status.engine`` and the agent's bundle registry key.

    The same names as the operator's ``api.common.Engine`` (a unit test keeps them equal); the agent keeps
    its own so that it imports nothing of the operator.
    """

    MYSQL = "mysql"
    MARIADB = "mariadb"
    POSTGRESQL = "postgresql"
    MONGODB = "mongodb"
    CASSANDRA = "cassandra"


class Role(enum.StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"
    STANDALONE = "standalone"  # no replication configured (a fresh server, or a DatabaseInstance)
    MEMBER = "member"  # engines without primaries (Cassandra)
    UNKNOWN = "unknown"


class Privilege(enum.StrEnum):
    READ = "read"
    READ_WRITE = "readWrite"
    ADMIN = "admin"


class ErrorCode(enum.StrEnum):
    """Every ``ErrorReply.error`` the agent sends; the strings are the wire contract (never rename one)."""

    BAD_REQUEST = "bad_request"  # 400: the body or a parameter is invalid
    BAD_NAME = "bad_name"  # 400: a database, user, parameter or host name breaks the identifier rules
    UNSUPPORTED_METHOD = "unsupported_method"  # 400: the engine has no such backup method
    UNAUTHORIZED = "unauthorized"  # 401: missing or wrong bearer token
    NOT_FOUND = "not_found"  # 404
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405 (aiohttp's router)
    TIMEOUT = "timeout"  # 408: a replication position was not applied in time
    CONFLICT = "conflict"  # 409: the engine's state refuses it now (read-only, a set change in progress)
    BACKUP_RUNNING = "backup_running"  # 409: the backup to delete is still running on this agent
    REQUEST_ENTITY_TOO_LARGE = "request_entity_too_large"  # 413 (aiohttp's body limit)
    HTTP_ERROR = "http_error"  # any other 4xx/5xx aiohttp itself raised
    ENGINE_ERROR = "engine_error"  # 500: the engine failed the request
    INTERNAL = "internal"  # 500: a bug in the agent (details in its log)
    UNSUPPORTED = "unsupported"  # 501: the engine has no such operation
    STORAGE_ERROR = "storage_error"  # 502: the backup target failed or refused (the operator retries)
    ENGINE_UNAVAILABLE = "engine_unavailable"  # 503
    # 503 from /readyz while spec.restoreFrom is not done (restore_<RestoreState>), and the init
    # container's restore (``kubetrove-agent restore``) reports REFUSED and FAILED with the same codes.
    RESTORE_PENDING = "restore_pending"
    RESTORE_RESTORING = "restore_restoring"
    RESTORE_REFUSED = "restore_refused"
    RESTORE_FAILED = "restore_failed"


class ErrorReply(Wire):
    # An ErrorCode from the agent; a str on the wire so that a client can also carry what a proxy
    # answered (``agent.client`` uses "http_<status>" for a non-JSON reply).
    error: str
    detail: str = ""


class Health(Wire):
    ok: bool
    detail: str = ""


class RingNode(Wire):
    """One node of a ring (Cassandra) as one node sees it: a line of ``nodetool status``."""

    address: str
    host_id: str
    state: str  # two letters: Up/Down, then Normal/Leaving/Joining/Moving ("UN", "DN", "UJ"...)
    load: str | None = None  # data on disk as nodetool prints it ("104.5 KiB"); None while joining
    tokens: int = Field(ge=0)


class NodeTokens(Wire):
    """Who a ring node is (Cassandra): what a restore needs to load its data on a node owning its ranges."""

    host_id: str
    address: str
    tokens: list[str] = Field(min_length=1)  # system.local's tokens: the ranges this node's data belongs to


class VolumeUsage(Wire):
    """The data volume's filesystem (``statvfs`` of the data directory), in bytes, as ``df`` counts."""

    used_bytes: int = Field(ge=0)
    available_bytes: int = Field(ge=0)  # what a non-root writer may still use (root's reserve excluded)
    capacity_bytes: int = Field(ge=0)

    @property
    def used_fraction(self) -> float:
        """df's Use%: used / (used + available), 0..1 (0 for an empty or unmeasured filesystem)."""
        room = self.used_bytes + self.available_bytes
        return self.used_bytes / room if room else 0.0


class Status(Wire):
    """What the clustering loop observes of one member."""

    engine: str
    version: str
    role: Role
    read_only: bool
    healthy: bool
    # Position in the engine's own syntax: executed GTID set (MySQL), gtid_current_pos (MariaDB),
    # replay LSN on a standby / current WAL LSN on a primary (PostgreSQL), optime (MongoDB).
    position: str | None = None
    # Received-but-maybe-not-applied position: retrieved GTID set / gtid_io_pos / receive LSN.
    received_position: str | None = None
    lag_seconds: float | None = None
    source_host: str | None = None  # whom a replica replicates from
    replication_running: bool = False
    replication_error: str | None = None
    connections: int | None = None
    # The source refused this replica because it holds transactions the source never had (its history
    # diverged below the last GTIDs, which positions alone cannot show): errant, the fix is a rebuild.
    diverged: bool = False
    # A ring node (Cassandra): its own host id, and the whole ring as it sees it (None: not known, e.g.
    # no nodetool in the image, or not asked yet).
    host_id: str | None = None
    ring: list[RingNode] | None = None
    # A rebuild (POST /v1/replication/rebuild) is running: cloning, waiting for the engine's restart, or
    # configuring replication from the donor. The loop asks for no other rebuild meanwhile.
    rebuilding: bool = False
    # Why the last rebuild failed; reported for a while (the agent's back-off), then cleared so the loop
    # may ask again. None: no recent failure.
    rebuild_error: str | None = None
    # The data volume's filesystem (agent/volume.py); None when the agent has no data directory.
    volume: VolumeUsage | None = None


class VolumeReply(Wire):
    """GET /v1/volume: the data volume's filesystem (None when the agent has no data directory)."""

    volume: VolumeUsage | None = None


class DatabaseRequest(Wire):
    """PUT /v1/databases/{name}. Cassandra uses ``replication_factor`` for its keyspace."""

    replication_factor: int = Field(default=1, ge=1, le=15)


class LeaveCheckRequest(Wire):
    """POST /v1/ring/decommission/check: 200 if ``nodes_left`` nodes can hold every keyspace but the ring's
    system keyspaces and ``lowering`` (the operator fits those to the smaller ring first), else 409 naming
    every keyspace in the way."""

    nodes_left: int = Field(ge=1)
    lowering: list[str] = Field(default_factory=list)


class DatabaseList(Wire):
    names: list[str]


class Grant(Wire):
    database: str
    privileges: list[Privilege] = Field(min_length=1)


class UserRequest(Wire):
    """PUT /v1/users/{name}: create or update (password, grants replaced to exactly these)."""

    # No NUL: PostgreSQL refuses it in any text, C clients end the string there (a different password).
    password: str = Field(min_length=1, max_length=256, pattern=r"^[^\x00]+$")
    grants: list[Grant] = Field(default_factory=list)


class ParametersRequest(Wire):
    """PUT /v1/parameters: dynamic parameters, already validated by the operator against the catalog."""

    parameters: dict[str, str]


class ParametersReply(Wire):
    applied: list[str]
    needs_restart: list[str] = Field(default_factory=list)


class ReplicationSourceRequest(Wire):
    """POST /v1/replication/source: become a replica of host:port (GTID auto-positioning)."""

    host: str
    port: int = Field(ge=1, le=65535)
    user: str
    password: str


class RebuildRequest(Wire):
    """POST /v1/replication/rebuild: replace this member's data by a copy of host:port's, then replicate
    from it. What this member holds that the donor lacks is discarded (and named in the reply)."""

    host: str
    port: int = Field(ge=1, le=65535)
    user: str
    password: str


class RebuildReply(Wire):
    """202: the rebuild started (it runs on in the agent; ``Status.rebuilding`` says when it is done)."""

    # The transactions only this member held, in the engine's position syntax (MySQL: the GTID set
    # ``GTID_SUBTRACT(own, donor's)``); "" when it held nothing of its own.
    discarded: str
    donor_position: str  # the donor's position when the rebuild started


class WaitRequest(Wire):
    """POST /v1/replication/wait: wait until ``position`` is applied; 200 if reached, 408 if not in time."""

    position: str
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)


class WaitReply(Wire):
    reached: bool
    position: str | None = None


class Ok(Wire):
    ok: bool = True
    detail: str = ""


# -- membership of an engine-elected set (PUT /v1/replication/members; MongoDB replica sets) -------------


class SetMember(Wire):
    """One wanted member: a stable id (the StatefulSet ordinal; MongoDB allows 0-255) and its host:port."""

    id: int = Field(ge=0, le=255)
    host: str = Field(min_length=3, max_length=300)


class MembersRequest(Wire):
    """PUT /v1/replication/members: the set should consist of exactly these members.

    Sent to the member that reports itself primary (or, before the set exists, to the first member). One
    call changes at most one member (MongoDB adds or removes one voting member per reconfiguration):
    the reply says whether the set is complete, and the caller calls again until it is.
    """

    members: list[SetMember] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _unique(self) -> MembersRequest:
        for what, values in (("id", [m.id for m in self.members]), ("host", [m.host for m in self.members])):
            if len(set(values)) != len(values):
                raise ValueError(f"member {what}s must be unique")
        return self


class MembershipAction(enum.StrEnum):
    INITIATED = "initiated"  # the set did not exist: created with every requested member
    RECONFIGURED = "reconfigured"  # one member added or removed
    UNCHANGED = "unchanged"  # the set already had exactly the requested members


class MembersReply(Wire):
    action: MembershipAction
    added: list[str] = Field(default_factory=list)  # hosts
    removed: list[str] = Field(default_factory=list)
    complete: bool  # the set now has exactly the requested members; False: call again
    version: int | None = None  # the set's configuration version after the call


# -- backups (POST /v1/backups, GET /v1/backups/{id}) and restore (``kubetrove-agent restore``) ----------


class BackupMethod(enum.StrEnum):
    """How the agent takes a backup: the engine's physical copy tool, or a logical dump."""

    PHYSICAL = "physical"
    LOGICAL = "logical"


class BackupPhase(enum.StrEnum):
    """Same names as the DatabaseBackup status phases."""

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class S3Target(Wire):
    """An S3-compatible bucket. Credentials absent: boto3's default chain (AWS_* env from a Secret)."""

    bucket: str = Field(min_length=1)
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = Field(default=None, repr=False)


class DirectoryTarget(Wire):
    """A directory the agent can write (a PVC mounted into the pod)."""

    path: str = Field(min_length=1)


class BackupTarget(Wire):
    """Exactly one of ``s3`` or ``directory``."""

    s3: S3Target | None = None
    directory: DirectoryTarget | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BackupTarget:
        if (self.s3 is None) == (self.directory is None):
            raise ValueError("set exactly one of s3 or directory")
        return self


BACKUP_ID = r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?$"


class BackupRequest(Wire):
    """POST /v1/backups. Idempotent per ``id``: a repeat returns the known state, never a second run."""

    id: str = Field(pattern=BACKUP_ID)  # the operator's choice, e.g. "<DatabaseBackup name>-<uid prefix>"
    method: BackupMethod
    target: BackupTarget
    created_at: str  # RFC 3339, passed in: the agent never stamps a manifest with its own clock
    databases: list[str] | None = None  # logical only; None means every user database


class TableStats(Wire):
    """Recorded at backup time so a verification restore can compare."""

    rows: int
    checksum: str | None = None  # engine-specific digest; None where too costly to compute
    # Written while the backup ran (its stats before the copy and after it differ): the copy holds some
    # state in between, so a verification checks that the table was restored, not its rows.
    changed: bool = False


class BackupReply(Wire):
    """GET /v1/backups/{id} (and the POST reply)."""

    id: str
    phase: BackupPhase
    engine: str
    method: BackupMethod
    tool: str = ""
    engine_version: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    bytes_done: int = 0
    size_bytes: int | None = None
    sha256: str | None = None
    position: str | None = None
    location: str | None = None
    throughput_mib_per_s: float | None = None
    error: str | None = None
    ring_node: NodeTokens | None = None  # a ring node's backup: whose data it is (also in the manifest)


class RestoreRequest(Wire):
    """What ``kubetrove-agent restore`` reads: JSON the operator renders into the init container.

    Physical restores write ``data_dir`` (which must be missing or empty, inside the data volume) and need no
    running engine; logical restores load into the running engine the agent is configured for.
    """

    backup_id: str = Field(pattern=BACKUP_ID)
    source: BackupTarget
    engine: str
    major: str  # the engine major version of the new instance: a backup of another major is refused
    data_dir: str | None = None
    # Only the StatefulSet's member 0 restores; the others leave their volume empty and clone from it
    # (Datastore.restore_first_member_only). The member is read from the pod's hostname (its name).
    first_member_only: bool = False
    # A ring's backup (Cassandra): member i restores backup ``member_backups[i]`` (its ordinal read from the
    # pod's hostname), the snapshot of node i, and starts with that node's tokens. Empty: ``backup_id``.
    member_backups: list[str] = Field(default_factory=list)


class RestoreState(enum.StrEnum):
    """Where this pod's restore is. REFUSED and FAILED are final: the pod never becomes ready."""

    PENDING = "pending"  # reading the manifest / waiting for the engine to accept writes
    RESTORING = "restoring"  # spooling, verifying and loading a logical backup
    DONE = "done"  # restored (physical: by the init container; logical: by this agent)
    REFUSED = "refused"  # the backup cannot be used (missing, corrupt, other engine/major): nothing loaded
    FAILED = "failed"  # a load failed or was interrupted: the database may hold a partial restore


class RestoreProgress(Wire):
    """GET /v1/restore: the restore of ``spec.restoreFrom`` in this pod; 404 when it has none."""

    backup_id: str
    method: BackupMethod | None = None  # None until the manifest has been read
    state: RestoreState
    detail: str = ""


# -- verification of a restored backup (POST /v1/verify, on the agent of the throwaway instance) ---------


class VerifyRequest(Wire):
    """POST /v1/verify: check the restored engine and read the stats recorded in backup ``backup_id``."""

    backup_id: str = Field(pattern=BACKUP_ID)
    source: BackupTarget  # where the backup (and so its manifest) is stored


class TableCheck(Wire):
    """The engine's consistency check of one table ("db.table", "db.schema.table" for PostgreSQL)."""

    table: str
    ok: bool
    message: str = ""


class VerifyReply(Wire):
    """What the backup recorded and what the restored engine holds now; the operator compares them."""

    engine: str
    check_tool: str  # "CHECK TABLE", "amcheck", or "none" (no consistency check for this engine)
    recorded: dict[str, TableStats] = Field(default_factory=dict)  # the manifest's, at backup time
    observed: dict[str, TableStats] = Field(default_factory=dict)  # the same stats, restored
    checks: list[TableCheck] = Field(default_factory=list)


# -- the engine's logs (GET /v1/logs/slow, GET /v1/logs/error) -------------------------------------------

LOG_TAIL_DEFAULT = 100
LOG_TAIL_MAX = 1000
# ?follow=true: the reply is NDJSON (one entry per line, the same models), the tail first and then new
# entries as the engine logs them, until the client goes away or this bound (the agent then ends it).
LOG_FOLLOW_MAX_SECONDS = 3600
NDJSON = "application/x-ndjson"
# The agent's stdout: the engine's new log entries, one JSON object a line, by logger (slow: engine, time,
# duration_seconds, user, database, query; error: engine, time, level, message), read back by
# ``kubectl trove logs --slow`` from the agent container's log (docs/agent-api.md, "Engine logs on stdout").
ENGINE_LOGGER = "kubetrove.engine"
ENGINE_SLOW_LOGGER = f"{ENGINE_LOGGER}.slow"
ENGINE_ERROR_LOGGER = f"{ENGINE_LOGGER}.error"


class LogQuery(Wire):
    """The query string of GET /v1/logs/*: the newest ``tail`` entries at or after ``since``."""

    tail: int = Field(default=LOG_TAIL_DEFAULT, ge=1, le=LOG_TAIL_MAX)
    since: AwareDatetime | None = None  # RFC 3339 with its offset ("2026-12-06T20:00:00Z")
    follow: bool = False  # stream NDJSON: the tail, then new entries (LOG_FOLLOW_MAX_SECONDS at most)


class SlowQuery(Wire):
    """One slow statement (MySQL, MariaDB: a row of mysql.slow_log; PostgreSQL: a duration record of its
    server log), operation (MongoDB: system.profile) or read (Cassandra: MonitoringTask's report).

    ``query`` is redacted by the agent: password literals become ``'***'``."""

    # The log's own time, in UTC: mysql.slow_log's start_time, system.profile's ts, PostgreSQL's log_time,
    # the time of Cassandra's report.
    time: AwareDatetime
    duration_seconds: float = Field(ge=0)
    user: str | None = None
    database: str | None = None
    query: str
    rows_examined: int | None = None  # rows (MySQL, MariaDB) or documents (MongoDB) the engine read


class SlowLogReply(Wire):
    """GET /v1/logs/slow: oldest first, newest last, at most ``tail`` entries."""

    engine: str
    entries: list[SlowQuery]


class ErrorLogEntry(Wire):
    """One line (or record) of the engine's error log; ``message`` redacted like ``SlowQuery.query``."""

    time: AwareDatetime | None = None  # None when the line carries no time the agent can read
    level: str | None = None  # the engine's own word: "Error", "Warning", "Note", "System"...
    message: str


class ErrorLogReply(Wire):
    """GET /v1/logs/error: oldest first, newest last, at most ``tail`` entries."""

    engine: str
    entries: list[ErrorLogEntry]
