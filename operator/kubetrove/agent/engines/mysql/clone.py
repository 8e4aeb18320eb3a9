"""Provisioning a MySQL member with the clone plugin (``CLONE INSTANCE``): an empty one before it replicates,
an errant one when the operator asks for a rebuild (``POST /v1/replication/rebuild``).

Why not replay the source's binary log from the start, as MariaDB does: a replica's receiver drops every
event that carries its own ``server_id`` (the loop guard; ``replicate_same_server_id`` is off and cannot
be combined with ``log_replica_updates``). A member rebuilt from an empty volume keeps its ``server_id``
(100 + the pod ordinal), so the transactions it once wrote as the primary are skipped, silently:
replication runs, reports no error, and those rows never arrive. Seen on real 9.7.4 servers. A clone
copies the donor's data files instead, GTID state included, and the member then auto-positions from
there (as MOCO provisions its replicas). https://dev.mysql.com/doc/refman/8.4/en/clone-plugin-remote.html

- An empty member (no GTID at all: a fresh data directory; the image's set-up writes nothing to the
  binary log) is cloned by ``set_source``, and only from a source that has transactions.
- A member with history is only wiped by an explicit rebuild (``Rebuild``): the operator asks for it
  for an errant member (docs/clustering.md, I5 and I7). The agent refuses it on a writable member (it
  may be the primary) and from itself, and names what is discarded (``GTID_SUBTRACT(own, donor's)``)
  before anything is touched.
- Both sides need the plugin (``plugin_load_add = mysql_clone.so`` in the rendered config); the source
  account needs BACKUP_ADMIN, the agent's account CLONE_ADMIN. Without the plugin on this member an
  empty one replays the binary log as before (clone-less builds only; every catalog image ships it).
- ``CLONE INSTANCE`` is refused while ``super_read_only`` is ON (error 1290, seen on 9.7.4); the clone
  lifts it for the statement and keeps ``read_only`` ON, so only the agent's own account could write in
  that moment, and the data is replaced anyway. The restarted server reads ``super_read_only`` from the
  rendered config (a cluster member starts fenced).
- The server restarts when the clone ends. With no supervisor (a pod's mysqld is the container's main
  process) it shuts down with 0 and ERROR 3707; the kubelet restarts the container. The clone resets the
  replication configuration (the donor's data dictionary has none): the rebuild configures it again
  once the restarted server answers, recognised by ``Com_clone`` = 0 (the old server counted the CLONE
  statement; a new process starts at 0).
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pymysql

from kubetrove.agent.engines.base import Conflict, DriverError, EngineUnavailable
from kubetrove.agent.engines.mysql_family.driver import client_tls
from kubetrove.agent.protocol import RebuildReply

log = logging.getLogger(__name__)

RESTART_FAILED = 3707  # "Restart server failed (mysqld is not managed by supervisor process)."
LOST_CONNECTION = frozenset({2006, 2013})  # a supervised server restarted under us
# How long a rebuild waits for the restarted server (a pod: the kubelet's restart back-off included).
RESTART_TIMEOUT = 600.0
# How long a failed rebuild is reported (Status.rebuild_error) before the operator may ask again.
RETRY_AFTER = 60.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _normalized(value: Any) -> str:
    return re.sub(r"\s+", "", _text(value))


def needs_clone(cur: Any) -> bool:
    """This member has no GTID at all and the clone plugin is active."""
    cur.execute(
        "SELECT @@GLOBAL.gtid_executed AS mine,"
        " (SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone') AS plugin"
    )
    row = cur.fetchone()
    return not _normalized(row["mine"]) and row["plugin"] == "ACTIVE"


def donor_state(
    host: str, port: int, user: str, password: str, timeout: float, tls: ssl.SSLContext | None = None
) -> tuple[str, str]:
    """The donor's (gtid_executed, server_uuid), read with the replication account (over ``tls`` when
    the donor serves TLS: it may refuse plaintext)."""
    try:
        conn = pymysql.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            connect_timeout=int(timeout),
            autocommit=True,
            ssl=tls,
        )
    except pymysql.err.MySQLError as exc:
        raise EngineUnavailable(
            f"cannot reach the replication source {host}:{port}: {exc.args[-1]}"
        ) from None
    try:
        with conn.cursor() as src:
            src.execute("SELECT @@GLOBAL.gtid_executed, @@GLOBAL.server_uuid")
            row = src.fetchone()
    finally:
        conn.close()
    return _normalized(row[0]), _text(row[1])


def source_has_transactions(
    host: str, port: int, user: str, password: str, timeout: float, tls: ssl.SSLContext | None = None
) -> bool:
    """The source's gtid_executed is not empty (read with the replication account)."""
    return bool(donor_state(host, port, user, password, timeout, tls)[0])


def clone_from(cur: Any, host: str, port: int, user: str, password: str) -> None:
    """CLONE INSTANCE FROM the source; returns once the server restarts (or shuts down) to finish it.

    Conflict (the server's own words) when the clone failed; the member is fenced again then.
    """
    cur.execute("SET GLOBAL clone_valid_donor_list = %s", (f"{host}:{port}",))
    cur.execute("SET GLOBAL super_read_only = OFF")  # refused otherwise (1290); read_only stays ON
    try:
        # Values as parameters: pymysql quotes the strings and leaves the port a bare number.
        cur.execute("CLONE INSTANCE FROM %s@%s:%s IDENTIFIED BY %s", (user, host, port, password))
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if code == RESTART_FAILED or code in LOST_CONNECTION:
            return
        message = _text(exc.args[-1]) if exc.args else str(exc)
        cur.execute("SET GLOBAL super_read_only = ON")
        raise Conflict(f"mysql could not clone from {host}:{port}: {message}") from None


class Driver(Protocol):
    """What a rebuild needs of the MySQL driver."""

    config: Any

    def _cursor(self) -> Any: ...


@dataclass(frozen=True)
class _Donor:
    host: str
    port: int
    user: str
    password: str


class Rebuild:
    """One member's rebuild from a donor: checked and started by ``start``, run in a thread by ``_run``.

    State is kept for ``Status`` (``rebuilding``, ``rebuild_error``); one rebuild at a time.
    """

    def __init__(
        self,
        driver: Driver,
        replicate: Callable[[str, int, str, str], None],
        restart_timeout: float = RESTART_TIMEOUT,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._driver = driver
        self._replicate = replicate  # the family's set_source (the driver's own refuses during a rebuild)
        self._restart_timeout = restart_timeout
        self._retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._running = False
        self._error: str | None = None
        self._failed_at = 0.0

    @property
    def running(self) -> bool:
        return self._running

    @property
    def error(self) -> str | None:
        """Why the last rebuild failed, while the back-off lasts; None otherwise."""
        if self._error is not None and self._clock() - self._failed_at < self._retry_after:
            return self._error
        return None

    def start(self, host: str, port: int, user: str, password: str) -> RebuildReply:
        """Refuse what must not be rebuilt, name what is discarded, start the rebuild thread.

        A refusal that asking again would not change (no clone plugin: a clone-less build) is also
        reported as ``rebuild_error`` for the back-off, so the loop does not ask every cycle."""
        with self._lock:
            if self._running:
                raise Conflict("a rebuild of this member is already running")
            mine, own_uuid, read_only, plugin = self._own_state()
            if not read_only:
                raise Conflict("refusing to rebuild a writable member: it may be the primary; fence it first")
            if plugin != "ACTIVE":
                raise self._failed(
                    Conflict(
                        "the clone plugin is not active on this member (plugin_load_add = mysql_clone.so)"
                    )
                )
            donor, donor_uuid = donor_state(
                host,
                port,
                user,
                password,
                self._driver.config.connect_timeout,
                client_tls(self._driver.config),
            )
            if donor_uuid == own_uuid:
                raise Conflict(f"{host}:{port} is this member: it cannot be its own donor")
            with self._driver._cursor() as cur:
                cur.execute("SELECT GTID_SUBTRACT(%s, %s) AS d", (mine, donor))
                discarded = _normalized(cur.fetchone()["d"])
            self._running, self._error = True, None
        log.warning(
            "rebuilding this member from %s:%s by clone; discarding transactions the donor lacks: %s",
            host, port, discarded or "none",
        )  # fmt: skip
        thread = threading.Thread(
            target=self._run, args=(_Donor(host, port, user, password),), name="rebuild", daemon=True
        )
        thread.start()
        return RebuildReply(discarded=discarded, donor_position=donor)

    def _failed(self, exc: DriverError) -> DriverError:
        self._error, self._failed_at = str(exc), self._clock()
        return exc

    def _own_state(self) -> tuple[str, str, bool, str]:
        with self._driver._cursor() as cur:
            cur.execute(
                "SELECT @@GLOBAL.gtid_executed AS mine, @@GLOBAL.server_uuid AS uuid, @@read_only AS ro,"
                " (SELECT PLUGIN_STATUS FROM information_schema.PLUGINS"
                " WHERE PLUGIN_NAME = 'clone') AS plugin"
            )
            row = cur.fetchone()
        return _normalized(row["mine"]), _text(row["uuid"]), bool(int(row["ro"])), _text(row["plugin"])

    def _run(self, donor: _Donor) -> None:
        try:
            with self._driver._cursor() as cur:
                cur.execute("STOP REPLICA")  # a quarantined member's receiver is stopped already
                clone_from(cur, donor.host, donor.port, donor.user, donor.password)
            self._wait_for_restart()
            self._replicate(donor.host, donor.port, donor.user, donor.password)
            log.warning("rebuilt from %s:%s; replicating from it", donor.host, donor.port)
        except DriverError as exc:
            log.error("rebuild from %s:%s failed: %s", donor.host, donor.port, exc)
            self._error, self._failed_at = str(exc), self._clock()
        except Exception as exc:  # the thread must always end the rebuild state
            log.exception("rebuild from %s:%s failed", donor.host, donor.port)
            self._error, self._failed_at = f"agent error: {exc}", self._clock()
        finally:
            self._running = False

    def _wait_for_restart(self) -> None:
        """Until the restarted server answers: Com_clone 0 (the old process counted the CLONE)."""
        deadline = self._clock() + self._restart_timeout
        while self._clock() < deadline:
            try:
                with self._driver._cursor() as cur:
                    cur.execute("SHOW GLOBAL STATUS LIKE 'Com_clone'")
                    row = cur.fetchone()
                if row is not None and int(row["Value"]) == 0:
                    return
            except DriverError:
                pass  # shutting down, or not back yet
            time.sleep(0.5)
        raise EngineUnavailable(
            f"the server did not come back within {self._restart_timeout:g}s after the clone"
        )
