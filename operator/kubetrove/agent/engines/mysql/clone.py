"""Provisioning an empty MySQL member with the clone plugin before it replicates (``CLONE INSTANCE``).

Why not replay the source's binary log from the start, as MariaDB does: a replica's receiver drops every
event that carries its own ``server_id`` (the loop guard; ``replicate_same_server_id`` is off and cannot
be combined with ``log_replica_updates``). A member rebuilt from an empty volume keeps its ``server_id``
(100 + the pod ordinal), so the transactions it once wrote as the primary are skipped, silently:
replication runs, reports no error, and those rows never arrive. Seen on real 9.7.4 servers. A clone
copies the donor's data files instead, GTID state included, and the member then auto-positions from
there (as MOCO provisions its replicas). https://dev.mysql.com/doc/refman/8.4/en/clone-plugin-remote.html

- Only a member with no GTID at all is cloned (a fresh data directory: the image's set-up writes
  nothing to the binary log), and only from a source that has transactions. A member with history is
  never wiped here: an errant one stays quarantined (docs/clustering.md, I5).
- Both sides need the plugin (``plugin_load_add = mysql_clone.so`` in the rendered config); the source
  account needs BACKUP_ADMIN, the agent's account CLONE_ADMIN. Without the plugin on this member the
  binary log is replayed as before (clone-less builds only; every catalog image ships it).
- The server restarts when the clone ends. With no supervisor (a pod's mysqld is the container's main
  process) it shuts down with 0 and ERROR 3707; the kubelet restarts the container and the next
  ``set_source`` finds data and auto-positions. Either way the call answers 503 (engine restarting).
"""

from __future__ import annotations

import re
from typing import Any

import pymysql

from kubetrove.agent.engines.base import Conflict, EngineUnavailable

RESTART_FAILED = 3707  # "Restart server failed (mysqld is not managed by supervisor process)."
LOST_CONNECTION = frozenset({2006, 2013})  # a supervised server restarted under us


def _empty(value: Any) -> bool:
    text = value.decode() if isinstance(value, bytes) else str(value or "")
    return not re.sub(r"\s+", "", text)


def needs_clone(cur: Any) -> bool:
    """This member has no GTID at all and the clone plugin is active."""
    cur.execute(
        "SELECT @@GLOBAL.gtid_executed AS mine,"
        " (SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'clone') AS plugin"
    )
    row = cur.fetchone()
    return _empty(row["mine"]) and row["plugin"] == "ACTIVE"


def source_has_transactions(host: str, port: int, user: str, password: str, timeout: float) -> bool:
    """The source's gtid_executed is not empty (read with the replication account)."""
    try:
        conn = pymysql.connect(
            host=host, port=port, user=user, password=password, connect_timeout=int(timeout), autocommit=True
        )
    except pymysql.err.MySQLError as exc:
        raise EngineUnavailable(
            f"cannot reach the replication source {host}:{port}: {exc.args[-1]}"
        ) from None
    try:
        with conn.cursor() as src:
            src.execute("SELECT @@GLOBAL.gtid_executed")
            row = src.fetchone()
    finally:
        conn.close()
    return row is not None and not _empty(row[0])


def clone_from(cur: Any, host: str, port: int, user: str, password: str) -> None:
    """CLONE INSTANCE FROM the source; always raises: the server restarts to finish the clone."""
    cur.execute("SET GLOBAL clone_valid_donor_list = %s", (f"{host}:{port}",))
    try:
        # Values as parameters: pymysql quotes the strings and leaves the port a bare number.
        cur.execute("CLONE INSTANCE FROM %s@%s:%s IDENTIFIED BY %s", (user, host, port, password))
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        if code != RESTART_FAILED and code not in LOST_CONNECTION:
            message = exc.args[-1] if exc.args else exc
            raise Conflict(f"mysql could not clone from {host}:{port}: {message}") from None
    raise EngineUnavailable(f"mysql cloned from {host}:{port}; the server restarts to finish the clone")
