"""Fencing a PostgreSQL primary whose client waits for its synchronous standby (docs/clustering.md,
"Demoting a primary"), on a real PostgreSQL 15 through the agent's driver.

The scene is a primary cut off from its standbys: ``synchronous_standby_names`` names a standby that
never connects, so a commit waits. The demotion fences the server (``fence``, or ``set_source``'s fence)
and then empties ``synchronous_standby_names`` (``Datastore.role_parameters``), which RELEASES every
waiting commit and reports it as a success to its client, though no standby has it and pg_rewind then
takes it away. The fence must end that session first: the client sees an error, never a success.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from kubetrove.agent.engines.postgresql.driver import PostgreSQLDriver
from tests.integration.servers.postgresql import PostgreSQLServer, start_postgresql

APP, APP_PASSWORD = "fence_app", "fence-App-Secret-1"


@pytest.fixture
def server() -> Iterator[PostgreSQLServer]:
    """A private server (synchronous_standby_names is server-wide: never on the shared one)."""
    started = start_postgresql()
    try:
        started.query(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(APP), sql.Literal(APP_PASSWORD))
        )
        started.query("CREATE TABLE acked (id int PRIMARY KEY)")
        started.query(sql.SQL("GRANT INSERT, SELECT ON acked TO {}").format(sql.Identifier(APP)))
        yield started
    finally:
        started.stop()


def _waiting_commit(server: PostgreSQLServer, outcome: dict[str, Any]) -> threading.Thread:
    """An application session whose INSERT waits for a standby; ``outcome`` gets "ok" or the error."""

    def run() -> None:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=server.port, user=APP, password=APP_PASSWORD, dbname="postgres",
                autocommit=True, connect_timeout=5,
            ) as conn:  # fmt: skip
                conn.execute("INSERT INTO acked VALUES (1)")
            outcome["result"] = "ok"
        except psycopg.Error as exc:
            outcome["result"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _sync_rep_waiters(server: PostgreSQLServer) -> int:
    return int(server.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")[0][0])


@pytest.mark.parametrize("demotion", ["fence", "set_source"])
def test_a_commit_waiting_for_its_standby_is_never_acknowledged_by_the_demotion(
    server: PostgreSQLServer, demotion: str
) -> None:
    driver = PostgreSQLDriver(server.engine_config())
    server.query("ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (nobody)'")
    server.query("SELECT pg_reload_conf()")
    outcome: dict[str, Any] = {}
    thread = _waiting_commit(server, outcome)
    deadline = time.monotonic() + 30
    while _sync_rep_waiters(server) == 0:
        assert time.monotonic() < deadline, f"no commit waiting for a standby: {outcome}"
        time.sleep(0.1)

    if demotion == "fence":
        driver.fence()
    else:  # an ex-primary repointed outside a pod: fenced, then 409 (no rejoin file to hand to a restart)
        with pytest.raises(Exception, match="not a standby"):
            driver.set_source("127.0.0.1", 1, "repl", "repl-Secret-1")
    # What the demotion does next (role_parameters on demotion): this releases any commit still waiting.
    driver.apply_parameters({"synchronous_standby_names": ""})
    thread.join(30)
    assert not thread.is_alive()
    assert isinstance(outcome.get("result"), psycopg.Error), (
        f"the waiting commit was acknowledged by the demotion: {outcome}"
    )
    # The fence held: a new session of the application cannot write.
    with psycopg.connect(
        host="127.0.0.1", port=server.port, user=APP, password=APP_PASSWORD, dbname="postgres",
        autocommit=True, connect_timeout=5,
    ) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # fmt: skip
        conn.execute("INSERT INTO acked VALUES (2)")
