"""The agent's CQL session to its own node: the connection, the ring's first superuser password, and the
one place cassandra-driver's exceptions become the agent's errors.

Invariants:
- The session reaches this node only (``WhiteListRoundRobinPolicy``): the agent manages its node's view.
- Values are bound as parameters, never formatted into CQL.
- A session whose node vanished from the driver's metadata (a node that left and came back as a new one)
  is dropped, so the next call connects afresh.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from kubetrove.agent.engines.base import BadRequest, DriverError, EngineUnavailable
from kubetrove.agent.engines.cassandra.permissions import quote
from kubetrove.agent.engines.cassandra.tls import ssl_context
from kubetrove.agent.engines.config import EngineConfig

log = logging.getLogger(__name__)

DEFAULT_PORT = 9042
PROTOCOL_VERSION = 5  # native protocol v5: Cassandra 4.0+; fixed so the driver does not probe and warn
# The superuser Cassandra creates on a ring's first start (CassandraRoleManager), with this password.
DEFAULT_SUPERUSER, DEFAULT_SUPERUSER_PASSWORD = "cassandra", "cassandra"
RECONNECT_SECONDS = 2.0
# A schema change on a ring waits for every node to agree on the new schema: seconds on a busy ring,
# more than the 10 s a plain request gets.
SCHEMA_TIMEOUT_SECONDS = 60.0
_SCHEMA_CHANGES = ("CREATE KEYSPACE", "ALTER KEYSPACE", "DROP KEYSPACE")


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Map cassandra-driver exceptions to the agent's errors (one place)."""
    from cassandra import AuthenticationFailed, InvalidRequest, OperationTimedOut, Unavailable
    from cassandra.cluster import NoHostAvailable

    try:
        yield
    except DriverError:
        raise
    except (NoHostAvailable, OperationTimedOut, Unavailable, AuthenticationFailed, OSError) as exc:
        raise EngineUnavailable(f"cassandra: {type(exc).__name__}: {exc}") from exc
    except InvalidRequest as exc:
        raise BadRequest(f"cassandra refused the request: {exc}") from exc


class NodeSession:
    """A lazily connected, thread-safe cassandra-driver session to the node of ``config``."""

    def __init__(self, config: EngineConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._cluster: Any = None
        self._session: Any = None
        self.request_timeout = max(config.connect_timeout, 10.0)

    def cluster_for(self, user: str, password: str) -> Any:
        from cassandra.auth import PlainTextAuthProvider
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import ConstantReconnectionPolicy, WhiteListRoundRobinPolicy

        host = self._config.host
        profile = ExecutionProfile(
            load_balancing_policy=WhiteListRoundRobinPolicy([host]),
            request_timeout=self.request_timeout,
        )
        return Cluster(
            [host],
            # One node, its own: when it restarts, be back within seconds (the default backoff
            # doubles up to 10 minutes, and the loop would see a healthy node as unreachable).
            reconnection_policy=ConstantReconnectionPolicy(RECONNECT_SECONDS, max_attempts=None),
            port=self._config.port or DEFAULT_PORT,
            auth_provider=PlainTextAuthProvider(user, password),
            protocol_version=PROTOCOL_VERSION,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=self._config.connect_timeout,
            ssl_context=ssl_context(self._config),  # spec.tls: the node may refuse plaintext (tls.py)
        )

    def connect(self) -> Any:
        """The session, connected first if need be (setting the first password when that opens it)."""
        with self._lock:
            if self._session is None:
                cluster = self.cluster_for(self._config.user, self._config.password)
                try:
                    try:
                        self._session = cluster.connect()
                    except Exception as exc:
                        if not self._set_first_password(exc):
                            raise
                        cluster.shutdown()  # a Cluster whose connect failed cannot connect again
                        cluster = self.cluster_for(self._config.user, self._config.password)
                        self._session = cluster.connect()
                except Exception:
                    cluster.shutdown()
                    raise
                self._cluster = cluster
            return self._session

    def _set_first_password(self, refused: Exception) -> bool:
        """The ring's first start: our superuser login was refused, the default one works: give the
        built-in superuser the password we were configured with (``ALTER ROLE``, bound). True if done.

        The seed creates ``cassandra``/``cassandra`` on the ring's first start; kubetrove's credentials
        Secret holds the password the agent logs in with (``--engine-password-file``), so the first agent
        to reach the ring replaces the default one, once. Any other refusal is left as it is.
        https://cassandra.apache.org/doc/5.0/cassandra/managing/operating/security.html
        """
        from cassandra import AuthenticationFailed
        from cassandra.cluster import NoHostAvailable

        user, password = self._config.user, self._config.password
        causes = refused.errors.values() if isinstance(refused, NoHostAvailable) else [refused]
        auth = any(isinstance(e, AuthenticationFailed) for e in causes)
        if not auth or user != DEFAULT_SUPERUSER or not password or password == DEFAULT_SUPERUSER_PASSWORD:
            return False
        default = self.cluster_for(DEFAULT_SUPERUSER, DEFAULT_SUPERUSER_PASSWORD)
        try:
            session = default.connect()
        except Exception:
            default.shutdown()
            return False  # not the default password either: the Secret does not open this ring
        try:
            session.execute(
                f"ALTER ROLE {quote(DEFAULT_SUPERUSER)} WITH PASSWORD = %s",
                (password,),
                timeout=SCHEMA_TIMEOUT_SECONDS,
            )
        finally:
            default.shutdown()
        log.warning("set the superuser's password from the credentials Secret (it was Cassandra's default)")
        return True

    def close(self) -> None:
        """Shut the driver's connection pool down (threads included)."""
        with self._lock:
            if self._cluster is not None:
                self._cluster.shutdown()
            self._cluster = self._session = None

    def rows(self, cql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Every row of ``cql`` (schema changes wait for the ring's agreement), errors mapped."""
        from cassandra.cluster import NoHostAvailable

        with errors():
            try:
                schema = cql.startswith(_SCHEMA_CHANGES)
                timeout = SCHEMA_TIMEOUT_SECONDS if schema else self.request_timeout
                return list(self.connect().execute(cql, params, timeout=timeout))
            except NoHostAvailable:
                # The driver may have forgotten the node for good: a node that left the ring (decommission)
                # and came back as a new one is removed from its metadata, and the whitelist then matches
                # no host ever again. A fresh connection on the next call finds it.
                self.close()
                raise
