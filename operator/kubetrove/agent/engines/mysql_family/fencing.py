"""Fencing a MySQL-family server: refuse writes, and end the client sessions of one that took writes.

Why end them (docs/clustering.md, "Demoting a primary"): a commit waiting for its semi-sync
acknowledgement is released, and ACKNOWLEDGED to its client, when the demotion then switches
``rpl_semi_sync_master_enabled`` off (or when the timeout expires), though it exists on this server
alone. Killed, its client gets an error, never a success. And first: ``SET GLOBAL read_only`` waits for
commits in progress (https://dev.mysql.com/doc/refman/8.4/en/server-system-variables.html#sysvar_read_only),
so behind a commit whose acknowledgement can never come (a primary cut off from its replicas) it would
wait for semi-sync's timeout, a day. So: kill, then fence with a short lock wait, and again if a new
session's commit got in between.

Invariants:
- Kept alive: the agent's own user, replicas' dump threads (``dump_commands``) and the server's own
  threads (``system user``, ``event_scheduler``, ``Daemon``).
- A server that was read-only already took no client write (none can be waiting): only the fence
  statements run.
- If the fence still fails after ``FENCE_ATTEMPTS`` rounds, what ``release_killed_waiters`` set stays
  set (MySQL: ``offline_mode``): never a writable server without semi-sync with clients on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymysql

from kubetrove.agent.engines.base import EngineUnavailable

UNKNOWN_THREAD = 1094  # ER_NO_SUCH_THREAD: KILL of a session that already ended
LOCK_WAIT_TIMEOUT = 1205  # ER_LOCK_WAIT_TIMEOUT: SET GLOBAL read_only behind a commit in progress
FENCE_LOCK_WAIT_SECONDS = 2  # per attempt
FENCE_ATTEMPTS = 5
Cursor = Any  # pymysql's DictCursor, or a recorded fake in unit tests


@dataclass(frozen=True)
class FencePlan:
    """A flavour's fencing statements (class attributes of its driver)."""

    engine: str
    agent_user: str
    fence: tuple[str, ...]
    dump_commands: tuple[str, ...]  # processlist COMMAND of a connected replica
    # When the fence still waits behind commits after their sessions were killed (a kill does not end
    # MySQL's semi-sync wait): statements that release those commits without letting a client commit
    # meanwhile, and the ones that undo the rest once the server is read-only. Empty: a kill suffices.
    release_killed_waiters: tuple[str, ...] = ()
    after_release: tuple[str, ...] = ()


def fence(cur: Cursor, plan: FencePlan) -> None:
    """Refuse writes; on a server that took writes until now, end the client sessions first."""
    cur.execute("SELECT @@read_only AS ro")
    if int(cur.fetchone()["ro"]):
        for statement in plan.fence:
            cur.execute(statement)
        return
    cur.execute(f"SET SESSION lock_wait_timeout = {FENCE_LOCK_WAIT_SECONDS}")
    released = False
    for _ in range(FENCE_ATTEMPTS):
        kill_client_sessions(cur, plan)
        try:
            for statement in plan.fence:
                cur.execute(statement)
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != LOCK_WAIT_TIMEOUT:
                raise
            if plan.release_killed_waiters and not released:
                released = True  # MySQL: a killed session still waits for its ack
                for statement in plan.release_killed_waiters:
                    cur.execute(statement)
            continue
        if released:  # fenced: clients may connect again (and only read)
            for statement in plan.after_release:
                cur.execute(statement)
        return
    raise EngineUnavailable(
        f"could not fence {plan.engine}: commits in progress still held read_only off after"
        f" {FENCE_ATTEMPTS} rounds of ending client sessions"
    )


def kill_client_sessions(cur: Cursor, plan: FencePlan) -> None:
    """KILL CONNECTION every session but the agent's own user's, replicas' and the server's own."""
    cur.execute(
        "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
        " AND USER NOT IN ('system user', 'event_scheduler', %s) AND COMMAND NOT IN %s",
        (plan.agent_user, (*plan.dump_commands, "Daemon")),
    )
    for row in cur.fetchall():
        try:
            cur.execute(f"KILL CONNECTION {int(row['id'])}")
        except pymysql.err.MySQLError as exc:  # 1094 Unknown thread id: it ended meanwhile
            if exc.args[0] != UNKNOWN_THREAD:
                raise
