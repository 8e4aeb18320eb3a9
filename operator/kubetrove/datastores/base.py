"""The datastore strategy: what the operator must know about one engine, behind one Protocol.

Everything engine-specific on the operator side lives behind ``Datastore`` (the agent owns the SQL).
Nothing outside ``kubetrove.datastores`` branches on the engine name: it looks the strategy up in
``kubetrove.datastores.registry.REGISTRY`` and calls it.

Contract, grouped by what callers rely on (Patroni's AbstractDCS habit):

- Pure and total: every method is a pure function of its arguments (no I/O, clock or randomness), so
  render and clustering.decide stay pure and unit tests compare literals.
- Catalog lookups (``version``, ``parameters``) never raise for a known key; validation functions
  return a list of human-readable problems (empty = valid) instead of raising, so the operator can
  report every problem at once in one condition.
- ``compare_positions`` must be able to answer INCOMPARABLE: MySQL GTID sets are only partially
  ordered (an errant replica is neither ahead nor behind the primary). Callers must treat
  INCOMPARABLE as "not a safe candidate", never as EQUAL.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol
from urllib.parse import quote

from kubetrove.api.common import Engine, TLSMode
from kubetrove.api.policies import BackupMethod


class HAMode(enum.StrEnum):
    OPERATOR_PRIMARY = "operator-primary"  # MySQL, MariaDB, PostgreSQL: the operator picks and promotes
    ENGINE_ELECTED = "engine-elected"  # MongoDB: the replica set elects; we manage membership
    NO_PRIMARY = "no-primary"  # Cassandra: a ring of equals


class Ordering(enum.StrEnum):
    LESS = "less"
    EQUAL = "equal"
    GREATER = "greater"
    INCOMPARABLE = "incomparable"


class ParamType(enum.StrEnum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STRING = "string"
    ENUM = "enum"
    SIZE = "size"  # bytes with optional K/M/G suffix as the engine accepts it


@dataclass(frozen=True)
class ParameterSpec:
    """One entry of an engine's parameter catalog."""

    name: str
    type: ParamType
    dynamic: bool  # True: applied live through the agent; False: needs a (rolling) restart
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()  # for ENUM (and BOOL spellings where the engine is picky)
    description: str = ""


@dataclass(frozen=True)
class NameRules:
    """What an engine refuses as a database or user name beyond the API's portable pattern.

    The API's pattern (``api.common.OBJECT_NAME``: a letter or ``_``, then letters, digits, ``_``; at
    most 48) is every engine's common subset; these are each engine's own limits and reserved names, so a
    spec the engine would refuse is refused at validation, naming the field, before any agent is called.
    The agent's bundles hold the same rules as their second fence (``agent/engines/<engine>/__init__.py``).
    """

    max_database: int
    max_user: int
    reserved_databases: frozenset[str] = frozenset()
    reserved_users: frozenset[str] = frozenset()
    reserved_prefixes: tuple[str, ...] = ()  # lower-case prefixes of either kind

    def problems(self, kind: str, name: str) -> list[str]:
        """One message per rule ``name`` breaks as a ``kind`` ("database" or "user")."""
        limit = self.max_database if kind == "database" else self.max_user
        found = []
        if len(name) > limit:
            found.append(f"{kind} name {name} is longer than {limit} characters")
        if self.is_reserved(kind, name):
            found.append(f"{kind} name {name} is reserved by the engine")
        return found

    def is_reserved(self, kind: str, name: str) -> bool:
        """Whether ``name`` is one the engine keeps for itself as a ``kind`` (case-insensitive)."""
        reserved = self.reserved_databases if kind == "database" else self.reserved_users
        lowered = name.lower()
        return lowered in reserved or lowered.startswith(self.reserved_prefixes)


@dataclass(frozen=True)
class VersionInfo:
    """A supported engine version: its image and what it can be upgraded to."""

    version: str  # the catalog key, e.g. "10.11"
    # ``name:tag`` relative to the operator's image registry (``qualified_image``); hack/images builds
    # and pushes exactly this name.
    image: str
    major: str  # versions with the same major can restore each other's physical backups
    # Catalog keys an in-place upgrade to this version may start from (the engine's documented upgrade
    # paths); any other change of version is refused by kubetrove.datastores.validation.
    upgrade_from: tuple[str, ...] = ()
    # The agent image built for this version (``name:tag`` relative to the image registry, like
    # ``image``): its client and backup tools match the server's version and Debian suite (pg_basebackup
    # refuses a newer server; mysqldump and nodetool must match theirs). "" : the operator's fallback
    # agent image (KUBETROVE_AGENT_IMAGE). KUBETROVE_AGENT_IMAGE_<ENGINE> overrides both.
    agent_image: str = ""

    @property
    def line(self) -> str:
        """The release line of this key as the agent names a major (``methods.major``, a backup manifest's
        ``major``): the key itself ("10.11", "15"), or for a pinned patch release ("5.0.8") its line
        ("5.0"), whose physical backups it reads and writes alike."""
        return ".".join(self.version.split(".")[:2])


def default_version(versions: Mapping[str, VersionInfo]) -> str:
    """The catalog key offered by default: the first (oldest) release line. A pinned patch release
    ("5.0.8", kept so rings on it can move when their team chooses) is never the default."""
    return next((k for k, v in versions.items() if v.line == k), next(iter(versions)))


def qualified_image(registry: str, image: str) -> str:
    """``image`` (``name:tag``) in ``registry`` (``host[:port]/path``); unchanged if registry is ""."""
    return f"{registry.rstrip('/')}/{image}" if registry else image


@dataclass(frozen=True)
class Port:
    name: str
    number: int


@dataclass(frozen=True)
class ConfigFile:
    """Where the rendered engine configuration is mounted in the engine container."""

    mount_dir: str
    file_name: str


@dataclass(frozen=True)
class ServerTLS:
    """Client TLS of the engine (``spec.tls``): the mode and where its files are mounted, read-only.

    The files are a Secret the kubelet swaps in place on renewal (the paths never change, so neither does
    the config or the pod template). ``pem`` is the certificate and key in one file (MongoDB's
    ``certificateKeyFile``). ``mode`` is never DISABLED here: render passes None then.
    """

    mode: TLSMode
    cert: str
    key: str
    ca: str
    pem: str

    @property
    def required(self) -> bool:
        """Plaintext client connections are refused."""
        return self.mode is TLSMode.REQUIRED


@dataclass(frozen=True)
class EngineContainer:
    """How the engine container runs: everything render needs that differs per engine."""

    data_dir: str  # where the data volume is mounted
    run_as_user: int
    run_as_group: int
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # Env vars filled from the credentials Secret: env name -> Secret key.
    secret_env: Mapping[str, str] = field(default_factory=dict)
    read_only_root_filesystem: bool = True
    # Extra writable emptyDir mounts the engine needs when the root filesystem is read-only.
    scratch_dirs: tuple[str, ...] = ()
    # The administrative account the agent sidecar connects as (``--engine-user``), and the credentials
    # Secret key holding its password (mounted as a file: ``--engine-password-file``); "" = none.
    admin_user: str = ""
    admin_password_key: str = ""
    # A file on the data volume the agent creates when this member is fenced or made a replica, and
    # removes when it is promoted; ``command`` reads it at start so a demoted ex-primary restarts as a
    # replica (docs/clustering.md, "Restarting as a replica"). "" = the engine needs none.
    demoted_marker: str = ""
    # A directory the engine writes and the agent reads: an emptyDir mounted at this path in both
    # containers, passed to the agent as ``--clone-dir`` (MySQL's physical backup: ``CLONE LOCAL DATA
    # DIRECTORY`` into it, streamed out by the agent). "" = none.
    clone_dir: str = ""
    # Where a user reads the engine's error log (``kubectl trove logs``): "engine", its own container's
    # stdout/stderr; "agent", the agent container's ``kubetrove.engine.error`` lines, which the agent
    # publishes when the engine writes that log elsewhere (the agent driver's error_log_in_container_log).
    error_log_container: Literal["engine", "agent"] = "engine"

    @property
    def credential_keys(self) -> tuple[str, ...]:
        """The credentials Secret keys this engine reads: its ``secret_env`` and the agent's password."""
        keys = set(self.secret_env.values()) | (
            {self.admin_password_key} if self.admin_password_key else set()
        )
        return tuple(sorted(keys))


@dataclass(frozen=True)
class ClientInfo:
    """How a person reaches the engine from a shell: its URI form and its command-line client.

    Used by ``kubectl trove connect`` (kubetrove.cli). ``args`` may hold the placeholders ``{host}``,
    ``{port}``, ``{user}``, ``{database}`` and ``{uri}`` (the URI WITHOUT the password); the password
    never goes on a command line (other users see it in ``ps``): the client reads it from
    ``password_env``, or prompts for it when that is "".
    """

    scheme: str  # the URI scheme (``<scheme>://user:password@host:port/database``); "" = the engine has none
    program: str  # the engine's client, e.g. "psql"
    args: tuple[str, ...]
    password_env: str  # the variable the client reads the password from; "" = it prompts
    # What the URI's path names when no database is given ("" = nothing), e.g. "admin" for MongoDB.
    default_database: str = ""
    uri_query: str = ""  # appended as ``?<query>`` (e.g. MongoDB's authSource)
    # The URI query that asks the client for TLS verifying the server's certificate against ``{ca}`` (a
    # CA file's path) and its host name, e.g. libpq's ``sslmode=verify-full&sslrootcert={ca}``; "" = none.
    tls_query: str = ""
    # ``kubectl trove connect --client`` under spec.tls: options put before ``args`` and variables set for
    # the client, ``{ca}`` standing for the CA file's path. The client dials the port-forward on 127.0.0.1,
    # which the certificate does not name: they ask for TLS verifying the CHAIN, not the name.
    tls_args: tuple[str, ...] = ()
    tls_env: Mapping[str, str] = field(default_factory=dict)

    def uri(
        self, user: str, password: str, host: str, port: int, database: str = "", tls_ca: str = ""
    ) -> str:
        """The connection URI, user and password percent-encoded (RFC 3986); "" when there is no scheme.
        With ``tls_ca`` (a CA file's path) and a ``tls_query``, the URI asks for verified TLS."""
        if not self.scheme:
            return ""
        cred = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        path = quote(database or self.default_database, safe="")
        queries = [self.uri_query] if self.uri_query else []
        if tls_ca and self.tls_query:
            queries.append(self.tls_query.replace("{ca}", quote(tls_ca, safe="/")))
        query = f"?{'&'.join(queries)}" if queries else ""
        return f"{self.scheme}://{cred}@{host}:{port}/{path}{query}"


class Datastore(Protocol):
    """The operator-side strategy of one engine. Implementations are stateless singletons."""

    @property
    def engine(self) -> Engine: ...

    @property
    def versions(self) -> Mapping[str, VersionInfo]:
        """Supported versions, by catalog key, oldest to newest (a downgrade is a move to an earlier key);
        ``default_version`` picks the one offered by default."""
        ...

    @property
    def ports(self) -> Sequence[Port]:
        """Ports of the engine container; the first is the client port the Services expose."""
        ...

    @property
    def ha_mode(self) -> HAMode: ...

    @property
    def rejoin_rewinds(self) -> bool:
        """A member ahead of the primary is rewound when it rejoins, so being ahead is not errant.

        True for PostgreSQL: under synchronous replication what an ex-primary holds beyond the new
        primary (a shutdown checkpoint, unacknowledged commits) was never acknowledged, and pg_rewind
        discards it on rejoin; a rewind that fails is reported as ``diverged`` and quarantined. False for
        the MySQL family: GTIDs nobody else has are errant transactions that no tool takes back.
        """
        ...

    @property
    def rebuilds_errant(self) -> bool:
        """A quarantined (errant) member can be re-provisioned from the primary by its agent
        (``POST /v1/replication/rebuild``), discarding what only it holds (docs/clustering.md, I7).

        True for MySQL (the clone plugin). False for MariaDB (no clone: its volume is deleted by hand),
        PostgreSQL (nothing errant is kept: pg_rewind on rejoin), MongoDB and Cassandra (no positions
        judged by kubetrove).
        """
        ...

    @property
    def restore_first_member_only(self) -> bool:
        """A DatabaseCluster created from a backup restores it on member 0 only; the others clone from it.

        True where every member restoring the same backup would not give one replicating cluster: each
        PostgreSQL member would end its recovery with its own WAL on the same timeline (histories that
        diverge invisibly to pg_rewind), whereas its replicas are built by pg_basebackup anyway. False for
        the MySQL family: every member holds the same data at the same GTID position, and replicas only
        need their source set.
        """
        ...

    @property
    def name_rules(self) -> NameRules:
        """The engine's own limits and reserved names for databases and users."""
        ...

    @property
    def position_type(self) -> str:
        """What a replication position is for this engine, e.g. "mysql-gtid-set", "postgresql-lsn"."""
        ...

    @property
    def parameters(self) -> Mapping[str, ParameterSpec]:
        """The parameter catalog: the only parameters a user may set."""
        ...

    @property
    def config_file(self) -> ConfigFile: ...

    @property
    def client(self) -> ClientInfo:
        """How a person connects (URI and command-line client), for the CLI."""
        ...

    @property
    def backup_methods(self) -> Sequence[BackupMethod]:
        """Methods this engine supports, preferred first (AUTO resolves to the first)."""
        ...

    @property
    def replicated_databases(self) -> bool:
        """Each database has its own replication factor (Cassandra keyspaces); elsewhere members hold all."""
        ...

    @property
    def serves_tls(self) -> bool:
        """The engine can serve client TLS (``spec.tls``); False: a mode other than disabled is refused."""
        ...

    def container(self, version: str, tls: ServerTLS | None = None) -> EngineContainer:
        """How to run the engine container of ``version`` (a catalog key); ``tls``: client TLS is on
        (an engine whose start script writes its access rules refuses plaintext there)."""
        ...

    def render_config(
        self, parameters: Mapping[str, str], clustered: bool = False, tls: ServerTLS | None = None
    ) -> str:
        """The engine's config file text for validated ``parameters`` (plus kubetrove's fixed settings).

        ``clustered``: for the members of a DatabaseCluster, which may start differently (the MySQL family
        starts them fenced, so only the clustering loop ever makes one writable). ``tls``: client TLS
        with the mounted certificate files (None: plaintext, the config unchanged).
        """
        ...

    def validate_parameters(self, parameters: Mapping[str, str]) -> list[str]:
        """One message per unknown parameter or bad value; empty when all are valid."""
        ...

    def validate_topology(self, replicas: int) -> list[str]:
        """One message per reason ``replicas`` members are not allowed (e.g. an even MongoDB replica set)."""
        ...

    def compare_positions(self, a: str, b: str) -> Ordering:
        """Compare two replication positions of this engine (``a`` relative to ``b``)."""
        ...

    def semi_sync_ack_count(self, replicas: int) -> int:
        """Replicas that must receive a commit before its client is told "committed" (decide's I2)."""
        ...

    def role_parameters(self, primary: bool) -> Mapping[str, str]:
        """Dynamic parameters that follow a member's role, applied when it is promoted or demoted."""
        ...
