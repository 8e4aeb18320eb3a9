"""MySQL 8.4 statements, checked against recorded replies: the exact SQL sent, the Status read back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pymysql
import pytest

from kubetrove.agent.engines.base import BadRequest, Conflict, EngineUnavailable, NotFound
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mariadb.driver import (
    MariaDBDriver,
    native_password_hash,
    parse_gtid_list,
    reached,
)
from kubetrove.agent.engines.mysql.driver import MySQLDriver, validate_gtid_set
from kubetrove.agent.engines.mysql_family.driver import MySQLFamilyDriver
from kubetrove.agent.protocol import Grant, Privilege, Role
from tests.unit.agent.recorded_mysql import (
    GTID_EXECUTED,
    SHOW_REPLICA_STATUS_ROW,
    UUID_A,
    UUID_B,
    RecordedConnection,
    RecordedCursor,
    Reply,
)

READ_ONLY = "SELECT @@read_only AS ro"
TOP = "SELECT @@version AS version, @@read_only AS ro, @@gtid_executed AS position"


def driver_with(
    replies: Mapping[str, Reply] | None = None,
    errors: Mapping[str, Exception] | None = None,
    cls: type[MySQLFamilyDriver] = MySQLDriver,
) -> tuple[MySQLFamilyDriver, RecordedConnection]:
    conn = RecordedConnection(replies, errors)
    driver = cls(EngineConfig(user="agent", password="x"))
    driver._connect = lambda: conn  # type: ignore[method-assign]
    return driver, conn


def status_replies(replica: Any, dumps: int, read_only: int) -> dict[str, Reply]:
    return {
        "SELECT @@version": [{"version": "8.4.3", "ro": read_only, "position": GTID_EXECUTED}],
        "SHOW REPLICA STATUS": [replica] if replica else [],
        "SELECT COUNT(*) AS n": [{"n": dumps}],
        "SHOW GLOBAL STATUS": [{"Variable_name": "Threads_connected", "Value": "7"}],
    }


def test_status_of_a_replica_reads_the_84_field_names() -> None:
    driver, conn = driver_with(status_replies(SHOW_REPLICA_STATUS_ROW, 0, 1))
    status = driver.status()
    assert conn.sent == [
        TOP,
        "SHOW REPLICA STATUS",
        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND IN "
        "('Binlog Dump GTID','Binlog Dump')",
        "SHOW GLOBAL STATUS LIKE 'Threads_connected'",
    ]
    assert status.role is Role.REPLICA and status.read_only and status.healthy
    assert status.position == f"{UUID_A}:1-5,{UUID_B}:1-19"  # the newline the server prints is gone
    assert status.received_position == f"{UUID_A}:1-5"
    assert status.source_host == "127.0.0.1:13000"
    assert status.lag_seconds == 0.0 and status.replication_running and status.connections == 7
    assert conn.closed


def test_status_of_a_broken_replica_and_of_a_primary() -> None:
    broken = {**SHOW_REPLICA_STATUS_ROW, "Replica_SQL_Running": "No", "Seconds_Behind_Source": None}
    broken["Last_SQL_Error"] = "Error 'Duplicate entry' on query"
    status = driver_with(status_replies(broken, 0, 1))[0].status()
    assert status.role is Role.REPLICA and not status.healthy and not status.replication_running
    assert status.lag_seconds is None and status.replication_error == broken["Last_SQL_Error"]

    primary = driver_with(status_replies(None, 2, 0))[0].status()
    assert primary.role is Role.PRIMARY and not primary.read_only and primary.lag_seconds == 0.0
    assert driver_with(status_replies(None, 0, 0))[0].status().role is Role.STANDALONE


def test_set_source_sends_change_replication_source_with_auto_position() -> None:
    # A member with history is never cloned (an empty one is: test_agent_mysql / test_failover_mysql).
    driver, conn = driver_with(
        {
            "SELECT @@GLOBAL.gtid_executed AS mine": [{"mine": GTID_EXECUTED, "plugin": "ACTIVE"}],
            READ_ONLY: [{"ro": 1}],  # a replica already: no client session to end
        }
    )
    driver.set_source("db-0.db.ns.svc", 3306, "repl", "pa'ss")
    assert conn.sent[:2] == [READ_ONLY, "SET GLOBAL super_read_only = ON"]
    assert conn.sent[2].startswith("SELECT @@GLOBAL.gtid_executed AS mine")
    assert conn.sent[3:] == [
        "STOP REPLICA",
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'db-0.db.ns.svc', SOURCE_PORT = 3306,"
        " SOURCE_USER = 'repl', SOURCE_PASSWORD = 'pa\\'ss', SOURCE_AUTO_POSITION = 1,"
        " GET_SOURCE_PUBLIC_KEY = 1, SOURCE_CONNECT_RETRY = 5",
        "START REPLICA",
    ]


def test_promote_fence_and_stop() -> None:
    driver, conn = driver_with({READ_ONLY: [{"ro": 1}]})
    driver.promote()
    driver.fence()
    driver.stop_replication()
    assert conn.sent == [
        "STOP REPLICA",
        "RESET REPLICA ALL",
        "SET GLOBAL super_read_only = OFF",
        "SET GLOBAL read_only = OFF",
        READ_ONLY,
        "SET GLOBAL super_read_only = ON",
        "STOP REPLICA IO_THREAD",
    ]


@pytest.mark.parametrize("cls", [MySQLDriver, MariaDBDriver])
def test_fencing_a_writable_server_kills_the_client_sessions_that_may_wait_for_an_ack(
    cls: type[MySQLFamilyDriver],
) -> None:
    """A commit waiting for its semi-sync ack must end in an error, never be acknowledged by the demotion
    that follows (docs/clustering.md, "Demoting a primary"); the agent's own sessions, the replicas' dump
    threads and the server's threads stay; a session that ended meanwhile (1094) is no failure."""
    gone = pymysql.err.InternalError(1094, "Unknown thread id: 12")
    driver, conn = driver_with(
        {READ_ONLY: [{"ro": 0}], "SELECT ID AS id FROM": [{"id": 12}, {"id": 15}]},
        {"KILL CONNECTION 12": gone},
        cls=cls,
    )
    driver.fence()
    dumps = ",".join(f"'{c}'" for c in (*cls.DUMP_COMMANDS, "Daemon"))
    sessions = (
        "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND USER NOT IN"
        f" ('system user', 'event_scheduler', 'agent') AND COMMAND NOT IN ({dumps})"
    )
    # Killed BEFORE read_only is set: SET GLOBAL read_only waits for commits in progress.
    assert conn.sent == [
        READ_ONLY,
        "SET SESSION lock_wait_timeout = 2",
        sessions,
        "KILL CONNECTION 12",
        "KILL CONNECTION 15",
        *cls.FENCE,
    ]
    # A commit that got in between holds the fence back: kill again, fence again.
    waited = pymysql.err.OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction")
    attempts = iter([waited])

    def fence_once(query: str) -> list[dict[str, int]]:
        error = next(attempts, None)
        if error is not None:
            raise error
        return []

    driver, conn = driver_with({READ_ONLY: [{"ro": 0}], "SELECT ID AS id FROM": [{"id": 7}]}, cls=cls)
    real_execute = RecordedCursor.execute

    def execute(self: RecordedCursor, query: str, args: Any = None) -> int:
        if query == cls.FENCE[0]:
            fence_once(query)
        return real_execute(self, query, args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RecordedCursor, "execute", execute)
        driver.fence()
    assert conn.sent.count("KILL CONNECTION 7") == 2
    # MySQL: a killed session still waits for its ack, so the second round first releases it, with no
    # client able to commit meanwhile; offline again only once the fence holds. MariaDB: the kill suffices.
    released = [q for q in conn.sent if "offline_mode" in q or "rpl_semi_sync" in q]
    if cls is MySQLDriver:
        assert released == [*cls.RELEASE_KILLED_WAITERS, *cls.AFTER_RELEASE]
        assert conn.sent.index(cls.RELEASE_KILLED_WAITERS[-1]) < conn.sent.index(cls.FENCE[0])
        assert conn.sent[-1] == cls.AFTER_RELEASE[-1]
    else:
        assert released == []
    other = pymysql.err.OperationalError(1227, "Access denied; you need the CONNECTION_ADMIN privilege")
    driver, conn = driver_with(
        {READ_ONLY: [{"ro": 0}], "SELECT ID AS id FROM": [{"id": 12}]}, {"KILL CONNECTION": other}, cls=cls
    )
    with pytest.raises(Exception, match="CONNECTION_ADMIN"):
        driver.fence()


@pytest.mark.parametrize(("result", "reached_"), [(0, True), (1, False)])
def test_wait_uses_wait_for_executed_gtid_set(result: int, reached_: bool) -> None:
    driver, conn = driver_with({"SELECT WAIT_FOR_EXECUTED_GTID_SET": [{"r": result}]})
    assert driver.wait_for_position(GTID_EXECUTED, 2.5) is reached_
    assert conn.sent == [
        f"SELECT WAIT_FOR_EXECUTED_GTID_SET('{UUID_A}:1-5,{UUID_B}:1-19', 2.5e0) AS r"
    ]  # pymysql sends floats as doubles


@pytest.mark.parametrize("bad", ["0-1-5", f"{UUID_A}:1-5'); DROP TABLE t; --", f"{UUID_A}", "x:1"])
def test_wait_refuses_what_is_not_a_gtid_set_before_any_sql(bad: str) -> None:
    driver, conn = driver_with()
    with pytest.raises(BadRequest):
        driver.wait_for_position(bad, 1)
    assert conn.sent == []


def test_gtid_set_syntax_includes_84_tags() -> None:
    assert validate_gtid_set(f"{UUID_A}:1-5:7,\n{UUID_B}:orders:1-3") == f"{UUID_A}:1-5:7,{UUID_B}:orders:1-3"
    assert validate_gtid_set("") == ""


def test_user_grants_are_replaced_exactly_and_wildcards_escaped() -> None:
    current = [
        {"db": "app\\_db", "priv": "SELECT"},
        {"db": "app\\_db", "priv": "INSERT"},
        {"db": "old", "priv": "SELECT"},
    ]
    driver, conn = driver_with(
        {
            "SELECT 1 AS x FROM information_schema.SCHEMATA": [{"x": 1}],
            "SELECT @@read_only": [{"ro": 0}],
            "SELECT 1 AS x FROM mysql.user": [{"x": 1}],
            "SELECT TABLE_SCHEMA": current,
        }
    )
    created = driver.ensure_user("app", "pw", [Grant(database="app_db", privileges=[Privilege.READ])])
    assert not created
    assert conn.sent[-5:] == [
        "ALTER USER 'app'@'%' IDENTIFIED BY 'pw'",
        "SELECT TABLE_SCHEMA AS db, PRIVILEGE_TYPE AS priv FROM information_schema.SCHEMA_PRIVILEGES"
        " WHERE GRANTEE = '\\'app\\'@\\'%\\''",
        "GRANT SELECT, SHOW VIEW ON `app\\_db`.* TO 'app'@'%'",
        "REVOKE INSERT ON `app\\_db`.* FROM 'app'@'%'",
        "REVOKE ALL PRIVILEGES ON `old`.* FROM 'app'@'%'",
    ]


def test_mariadb_sends_the_native_password_hash_never_the_password() -> None:
    # MariaDB's own PASSWORD('password') (https://mariadb.com/kb/en/password/).
    assert native_password_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    driver, conn = driver_with(
        {"SELECT @@read_only": [{"ro": 0}], "SELECT TABLE_SCHEMA": []}, cls=MariaDBDriver
    )
    assert driver.ensure_user("app", "s3cret'pw", [])
    hashed = native_password_hash("s3cret'pw")
    assert conn.sent[-2] == f"CREATE USER 'app'@'%' IDENTIFIED BY PASSWORD '{hashed}'"
    assert not any("s3cret" in statement for statement in conn.sent)


def test_writes_on_a_read_only_server_are_refused_before_they_run() -> None:
    driver, conn = driver_with({"SELECT @@read_only": [{"ro": 1}]})
    with pytest.raises(Conflict):
        driver.ensure_database("new", 1)
    assert not any(s.startswith("CREATE") for s in conn.sent)


def test_engine_errors_map_to_driver_errors() -> None:
    read_only = pymysql.err.OperationalError(1290, "The MySQL server is running with --super-read-only")
    driver, _ = driver_with(errors={"SET GLOBAL": read_only})
    with pytest.raises(Conflict):
        driver.apply_parameters({"max_connections": "10"})
    driver, _ = driver_with(errors={"SELECT 1 AS x": pymysql.err.OperationalError(2013, "Lost connection")})
    with pytest.raises(EngineUnavailable):
        driver.drop_database("x")
    driver, _ = driver_with()
    with pytest.raises(NotFound):
        driver.drop_user("nobody")


def test_parameters_coerce_numbers_and_report_read_only_variables() -> None:
    readonly = pymysql.err.InternalError(1238, "Variable 'innodb_log_file_size' is a read only variable")
    driver, conn = driver_with(errors={"SET GLOBAL innodb_log_file_size": readonly})
    reply = driver.apply_parameters(
        {"max_connections": "500", "innodb_log_file_size": "1", "sql_mode": "ANSI"}
    )
    assert reply.applied == ["max_connections", "sql_mode"] and reply.needs_restart == [
        "innodb_log_file_size"
    ]
    assert "SET GLOBAL max_connections = 500" in conn.sent and "SET GLOBAL sql_mode = 'ANSI'" in conn.sent


def test_mariadb_dialect_statements() -> None:
    driver, conn = driver_with({READ_ONLY: [{"ro": 1}]}, cls=MariaDBDriver)
    driver.set_source("db-0", 3306, "repl", "pw")
    assert conn.sent == [
        READ_ONLY,
        "SET GLOBAL read_only = ON",
        "STOP SLAVE",
        "SET GLOBAL gtid_slave_pos = @@gtid_current_pos",
        "CHANGE MASTER TO MASTER_HOST = 'db-0', MASTER_PORT = 3306, MASTER_USER = 'repl',"
        " MASTER_PASSWORD = 'pw', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5",
        "START SLAVE",
    ]


def test_mariadb_gtid_lists_compare_per_domain() -> None:
    assert parse_gtid_list("0-1-100,\n1-2-5") == {0: 100, 1: 5}
    assert reached("0-1-100,1-2-5", "0-3-99")
    assert not reached("0-1-100", "0-1-100,1-2-1")
    with pytest.raises(BadRequest):
        parse_gtid_list("0-1-1'; --")


@pytest.mark.parametrize(
    ("error", "diverged"),
    [
        # The replica's IO thread wraps the source's refusal in error 1236 (MySQL 8.4 wording).
        (
            "Got fatal error 1236 from source when reading data from binary log: 'Replica has more GTIDs"
            " than the source has, using the source's SERVER_UUID. This may indicate that the end of the"
            " binary log was truncated or that the last binary log file was lost...'",
            True,
        ),
        # Also 1236, but the replica is behind, not errant: it needs a rebuild for another reason.
        (
            "Got fatal error 1236 from source when reading data from binary log: 'Cannot replicate because"
            " the source purged required binary logs. Replicate the missing transactions from elsewhere...'",
            False,
        ),
    ],
)
def test_a_replica_refused_for_transactions_the_source_lacks_is_diverged(error: str, diverged: bool) -> None:
    row = {
        **SHOW_REPLICA_STATUS_ROW,
        "Replica_IO_Running": "No",
        "Last_IO_Errno": 1236,
        "Last_IO_Error": error,
    }
    status = driver_with(status_replies(row, 0, 1))[0].status()
    assert (status.diverged, status.replication_error, status.healthy) == (diverged, error, False)
    assert not driver_with(status_replies(SHOW_REPLICA_STATUS_ROW, 0, 1))[0].status().diverged
