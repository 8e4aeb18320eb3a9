"""Apache Cassandra driver (cassandra-driver): keyspaces, roles and permissions over CQL.

Cassandra has no primary: every node is a ``member``, there is no replication position, and the
replication routes answer 501. Databases are keyspaces; users are login roles
(https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/security.html), which needs
``authenticator: PasswordAuthenticator`` and ``authorizer: CassandraAuthorizer`` in cassandra.yaml.

Invariants:
- Identifiers arrive validated by ``agent.names`` and are ALWAYS double-quoted here (quoting keeps
  their case); values (passwords, replication maps) are bound as parameters, never formatted in.
- The agent connects to its own node only (whitelist policy): it manages that node's view.
- Superuser roles are never altered or dropped through the API (the agent's own login is one).
- On a ring: a keyspace's replication factor never exceeds the ring's node count (a QUORUM write could
  never succeed), and a factor that grows is repaired from this node before the reply, so the new
  replicas hold the data (else a QUORUM read may find two replicas without it). The ring's own
  ``system_auth`` follows the ring's size (``ensure_ring_replication``): left at 5.0's default of 1, the
  one node holding the roles is a single point of login failure.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from kubetrove.agent.engines.base import (
    BadRequest,
    Conflict,
    EngineUnavailable,
    NotFound,
    Unsupported,
)
from kubetrove.agent.engines.cassandra import leaving, logs, nodetool
from kubetrove.agent.engines.cassandra.permissions import (
    permission_statements,
    quote,
    wanted_permissions,
)
from kubetrove.agent.engines.cassandra.ring import RingWatcher
from kubetrove.agent.engines.cassandra.session import NodeSession, errors
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.protocol import (
    Engine,
    ErrorLogEntry,
    Grant,
    NodeTokens,
    ParametersReply,
    Role,
    SlowQuery,
    Status,
    TableCheck,
)

log = logging.getLogger(__name__)

VERIFY_TIMEOUT_SECONDS = 3600.0  # nodetool verify reads every SSTable of the keyspace
DECOMMISSION_TIMEOUT_SECONDS = 6 * 3600.0  # streaming a node's data away: as long as its data needs
# Keyspaces Cassandra creates itself (4.0-5.0; 5.1 adds system_cluster_metadata); never listed or touched.
SYSTEM_KEYSPACES = frozenset(
    {
        "system",
        "system_auth",
        "system_schema",
        "system_distributed",
        "system_traces",
        "system_cluster_metadata",
    }
)
# The system keyspaces that are replicated like user keyspaces (the others are node-local or, for
# system_schema, everywhere by design): raised with the ring, auth first.
# https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/security.html#password-authentication
RING_KEYSPACES = ("system_auth", "system_distributed", "system_traces")
REPAIRED_RING_KEYSPACES = ("system_auth",)  # small, and a login must find its role on every node
_RATE_LIMITED = re.compile(r"can only be changed every (\d+)ms")  # CassandraRoleManager, 5.0


def _password_matches(password: str, salted_hash: str | None) -> bool:
    """True if ``password`` hashes to the role's stored bcrypt hash (Cassandra uses jBCrypt, $2a$)."""
    import bcrypt

    if not salted_hash:
        return False
    try:
        return bcrypt.checkpw(password.encode(), salted_hash.encode())
    except ValueError:  # not a bcrypt hash (another authenticator's format): treat as different
        return False


class CassandraDriver:
    """EngineDriver for one Cassandra node (see the module docstring for the mapping)."""

    engine = Engine.CASSANDRA
    error_log_in_container_log = True

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        # With options["datacenter"] keyspaces use NetworkTopologyStrategy in that DC (multi-DC-ready
        # clusters, GossipingPropertyFileSnitch); without it SimpleStrategy (one DC, SimpleSnitch).
        self._datacenter = config.options.get("datacenter")
        self._leaving = threading.Lock()  # decommission: one at a time
        self._node = NodeSession(config)  # CQL to this node (session.py)
        self._ring = RingWatcher.for_engine(config)  # the engine's Jolokia agent, not a nodetool JVM

    @property
    def config(self) -> EngineConfig:
        """The connection settings (the backup routes read them: nodetool's JMX port, the data dir)."""
        return self._config

    def close(self) -> None:
        """Shut the node session's connection pool down (threads included)."""
        self._node.close()

    # -- status -----------------------------------------------------------------------------

    def ping(self) -> None:
        """Raise EngineUnavailable unless the node answers a local query."""
        self._node.rows("SELECT key FROM system.local")

    def reload_tls(self) -> None:
        """``nodetool reloadssl``: the node re-reads its key and trust files (client and internode) when
        they changed; new connections get the new certificate, open ones keep theirs.
        https://cassandra.apache.org/doc/5.0/cassandra/managing/tools/nodetool/reloadssl.html"""
        nodetool.run(self._config, "reloadssl", timeout=60.0)

    def status(self) -> Status:
        """Version and bootstrap state of this node; role ``member``, no position (no primary)."""
        local = self._node.rows("SELECT release_version, bootstrapped, host_id FROM system.local")[0]
        # Rows counted here: count(*) without a partition key makes the server attach a warning to every
        # reply, which cassandra-driver logs at WARNING (once per status call, every second).
        clients = self._node.rows("SELECT port FROM system_views.clients")
        return Status(
            engine=self.engine,
            version=local.release_version,
            role=Role.MEMBER,
            read_only=False,
            healthy=local.bootstrapped == "COMPLETED",
            connections=len(clients),
            host_id=str(local.host_id) if local.host_id else None,
            ring=self._ring.view(),
        )

    def _keyspaces(self) -> list[tuple[str, dict[str, str]]]:
        rows = self._node.rows("SELECT keyspace_name, replication FROM system_schema.keyspaces")
        return [(r.keyspace_name, dict(r.replication)) for r in rows]

    def leave_check(self, nodes_left: int, lowering: list[str]) -> None:
        """Conflict naming every keyspace ``nodes_left`` nodes could not hold, besides the ring's system
        keyspaces and ``lowering`` (the caller fits those first); changes nothing (leaving.py)."""
        why = leaving.refusal(self._keyspaces(), nodes_left, {*RING_KEYSPACES, *lowering})
        if why is not None:
            raise Conflict(why)

    def decommission(self) -> None:
        """``nodetool decommission``, refused first when a keyspace would have more replicas than nodes;
        done only when the node says DECOMMISSIONED (leaving.py says why). One at a time per agent: a
        second caller waits for the first, then finds the node gone and returns."""
        with self._leaving:
            if self._mode() == leaving.DECOMMISSIONED:
                return
            why = leaving.refusal(self._keyspaces(), self.ring_size() - 1)
            if why is not None:
                raise Conflict(why)
            nodetool.run(self._config, "decommission", timeout=DECOMMISSION_TIMEOUT_SECONDS)
            mode = self._mode()
            if mode != leaving.DECOMMISSIONED:
                raise EngineUnavailable(
                    f"nodetool decommission returned, but the node is {mode}: still leaving"
                )

    def _mode(self) -> str | None:
        return leaving.operation_mode(nodetool.run(self._config, "netstats"))

    def check_tables(self, databases: list[str]) -> tuple[str, list[TableCheck]]:
        """``nodetool verify --force <keyspace> <tables...>`` per keyspace: every SSTable of this node read
        back against its checksums (``--force``: 4.0+ refuses to run verify without it, CASSANDRA-9947).
        One JVM per keyspace, not per table. It checks THIS node's SSTables only: on a ring, each node's.
        https://cassandra.apache.org/doc/5.0/cassandra/managing/tools/nodetool/verify.html
        """
        out: list[TableCheck] = []
        for keyspace in sorted(databases):
            rows = self._node.rows(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
            )
            tables = sorted(r.table_name for r in rows)
            if not tables:
                continue
            try:
                nodetool.run(
                    self._config, "verify", "--force", keyspace, *tables, timeout=VERIFY_TIMEOUT_SECONDS
                )
            except EngineUnavailable as exc:
                out.append(TableCheck(table=f"{keyspace}.*", ok=False, message=str(exc)))
                continue
            out += [TableCheck(table=f"{keyspace}.{t}", ok=True) for t in tables]
        return "nodetool verify", out

    def node_tokens(self) -> NodeTokens:
        """This node's host id, broadcast address and tokens, from ``system.local``."""
        row = self._node.rows("SELECT host_id, broadcast_address, tokens FROM system.local")[0]
        return NodeTokens(
            host_id=str(row.host_id), address=str(row.broadcast_address), tokens=sorted(row.tokens, key=int)
        )

    def ring_size(self) -> int:
        """Nodes in the ring as this node knows them (itself and its peers, up or down)."""
        return 1 + len(self._node.rows("SELECT peer FROM system.peers_v2"))

    def _check_fits(self, replication_factor: int) -> None:
        size = self.ring_size()
        if replication_factor > size:
            raise BadRequest(
                f"replication_factor {replication_factor} is above the ring size ({size} node"
                f"{'s' if size > 1 else ''}): a QUORUM write could never succeed"
            )

    def _repair(self, keyspace: str) -> None:
        """Full repair of the ranges of ``keyspace`` this node replicates (all when RF = ring size)."""
        nodetool.run(self._config, "repair", "-full", keyspace)

    def ensure_ring_replication(self, replication_factor: int) -> bool:
        """The ring's replicated system keyspaces get this factor; system_auth is repaired when raised."""
        self._check_fits(replication_factor)
        changed = False
        for keyspace in RING_KEYSPACES:
            current = self._current_replication(keyspace)
            wanted = self.replication(replication_factor)
            if current is None or current == wanted:
                continue
            self._node.rows(f"ALTER KEYSPACE {quote(keyspace)} WITH replication = %s", (wanted,))
            if keyspace in REPAIRED_RING_KEYSPACES and leaving.factor(wanted) > leaving.factor(current):
                self._repair(keyspace)
            changed = True
        return changed

    # -- keyspaces --------------------------------------------------------------------------

    def list_databases(self) -> list[str]:
        """User keyspaces, sorted."""
        rows = self._node.rows("SELECT keyspace_name FROM system_schema.keyspaces")
        return sorted(r.keyspace_name for r in rows if r.keyspace_name not in SYSTEM_KEYSPACES)

    def replication(self, replication_factor: int) -> dict[str, str]:
        """The replication map a keyspace gets for this factor (SimpleStrategy or NetworkTopologyStrategy)."""
        if self._datacenter:
            return {"class": "NetworkTopologyStrategy", self._datacenter: str(replication_factor)}
        return {"class": "SimpleStrategy", "replication_factor": str(replication_factor)}

    def _current_replication(self, name: str) -> dict[str, str] | None:
        rows = self._node.rows(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (name,)
        )
        if not rows:
            return None
        current = dict(rows[0].replication)
        current["class"] = current["class"].rsplit(".", 1)[-1]  # stored fully qualified
        return current

    def ensure_database(self, name: str, replication_factor: int) -> bool:
        """Create the keyspace, or ALTER its replication to the requested one; True if created.

        A factor above the ring size is refused (BadRequest naming ``replication_factor``); after an
        ALTER that raises it, ``nodetool repair -full`` from this node copies the data to the new replicas.
        """
        wanted = self.replication(replication_factor)
        current = self._current_replication(name)
        if current == wanted:
            return False
        self._check_fits(replication_factor)
        verb = "CREATE KEYSPACE IF NOT EXISTS" if current is None else "ALTER KEYSPACE"
        self._node.rows(f"{verb} {quote(name)} WITH replication = %s", (wanted,))
        if current is not None and leaving.factor(wanted) > leaving.factor(current):
            self._repair(name)
        return current is None

    def drop_database(self, name: str) -> None:
        """Drop the keyspace (and its data); NotFound if missing."""
        if self._current_replication(name) is None:
            raise NotFound(f"keyspace {name!r} does not exist")
        self._node.rows(f"DROP KEYSPACE IF EXISTS {quote(name)}")

    # -- roles ------------------------------------------------------------------------------

    def _role(self, name: str) -> Any:
        rows = self._node.rows(
            "SELECT role, is_superuser, salted_hash FROM system_auth.roles WHERE role = %s", (name,)
        )
        if rows and rows[0].is_superuser:
            raise Conflict(f"role {name!r} is a superuser; the agent does not manage superusers")
        return rows[0] if rows else None

    def ensure_user(self, name: str, password: str, grants: list[Grant]) -> bool:
        """Create or alter a login role, then make its keyspace permissions exactly ``grants``.

        The password is changed only when the stored bcrypt hash does not match it: Cassandra 5.0
        refuses a second password change of one role within 5 s (CassandraRoleManager rate limit,
        creation included), which would make a repeated PUT fail. A real change inside that window
        waits it out once (the PUT then takes up to ~5 s) instead of failing.
        """
        role = self._role(name)
        if role is None:
            self._node.rows(
                f"CREATE ROLE IF NOT EXISTS {quote(name)} WITH PASSWORD = %s AND LOGIN = true", (password,)
            )
        elif not _password_matches(password, role.salted_hash):
            self._alter_password(name, password)
        else:
            self._node.rows(f"ALTER ROLE {quote(name)} WITH LOGIN = true")
        self._set_permissions(name, grants)
        return role is None

    def _alter_password(self, name: str, password: str) -> None:
        cql = f"ALTER ROLE {quote(name)} WITH PASSWORD = %s AND LOGIN = true"
        try:
            self._node.rows(cql, (password,))
        except EngineUnavailable as exc:
            limited = _RATE_LIMITED.search(str(exc))
            if limited is None:
                raise
            time.sleep(int(limited.group(1)) / 1000 + 0.2)
            self._node.rows(cql, (password,))

    def _set_permissions(self, role: str, grants: list[Grant]) -> None:
        rows = self._node.rows(
            "SELECT resource, permissions FROM system_auth.role_permissions WHERE role = %s", (role,)
        )
        current = {r.resource: frozenset(r.permissions or ()) for r in rows}
        for cql in permission_statements(role, current, wanted_permissions(grants)):
            self._node.rows(cql)

    def drop_user(self, name: str) -> None:
        """Drop the role (its permissions go with it); NotFound if missing."""
        if self._role(name) is None:
            raise NotFound(f"role {name!r} does not exist")
        self._node.rows(f"DROP ROLE IF EXISTS {quote(name)}")

    # -- parameters -------------------------------------------------------------------------

    def apply_parameters(self, parameters: Mapping[str, str]) -> ParametersReply:
        """Report every change as needing a restart: Cassandra 5.0 has no CQL way to set one live.

        ``system_views.settings`` is read-only ("Modification is not supported", checked on 5.0.9);
        the live setters are JMX/nodetool only. A value that already matches the live setting is
        reported as applied, so the PUT after the restart converges.
        """
        rows = self._node.rows("SELECT name, value FROM system_views.settings")
        live = {r.name: r.value for r in rows}
        applied = sorted(k for k, v in parameters.items() if live.get(k) == v)
        return ParametersReply(applied=applied, needs_restart=sorted(set(parameters) - set(applied)))

    # -- replication: none (no primary) ------------------------------------------------------

    def _no_primary(self) -> Unsupported:
        return Unsupported("cassandra has no primary: every node takes writes; replication is per keyspace")

    def set_source(self, host: str, port: int, user: str, password: str) -> None:
        """Unsupported: no primary/replica roles in Cassandra."""
        raise self._no_primary()

    def stop_replication(self) -> None:
        """Unsupported: no primary/replica roles in Cassandra."""
        raise self._no_primary()

    def promote(self) -> None:
        """Unsupported: no primary/replica roles in Cassandra."""
        raise self._no_primary()

    def fence(self) -> None:
        """Unsupported: Cassandra has no read-only switch reachable over CQL."""
        raise self._no_primary()

    def wait_for_position(self, position: str, timeout_seconds: float) -> bool:
        """Unsupported: Cassandra has no replication position."""
        raise self._no_primary()

    # -- the engine's logs (GET /v1/logs/*): system_views.system_logs, logs.py ----------------

    def slow_queries(self, tail: int, since: datetime | None) -> list[SlowQuery]:
        """The reads MonitoringTask reported slower than ``slow_query_log_timeout`` (``logs.py``)."""
        return logs.newest(
            self._log_rows(since),
            tail,
            lambda row: logs.slow_queries(row) if logs.is_slow_report(row) else [],
        )

    def error_log(self, tail: int, since: datetime | None) -> list[ErrorLogEntry]:
        """Every other record of ``system_views.system_logs`` (INFO and above in kubetrove's image)."""
        return logs.newest(
            self._log_rows(since),
            tail,
            lambda row: [] if logs.is_slow_report(row) else [logs.error_entry(row)],
        )

    def _log_rows(self, since: datetime | None) -> Iterator[Any]:
        """The table's rows as the node serves them (newest first), paged; Conflict without the table."""
        from cassandra.query import SimpleStatement

        with errors():
            session = self._node.connect()
            if not list(session.execute(logs.HAS_TABLE, timeout=self._node.request_timeout)):
                raise Conflict(
                    "this Cassandra node has no system_views.system_logs table: its logback.xml declares no"
                    " org.apache.cassandra.utils.logging.VirtualTableAppender (kubetrove's image does)"
                )
            cql, params = (logs.RECORDS, ()) if since is None else (logs.RECORDS_SINCE, (since,))
            statement = SimpleStatement(cql, fetch_size=logs.FETCH_SIZE)
            yield from session.execute(statement, params, timeout=self._node.request_timeout)
