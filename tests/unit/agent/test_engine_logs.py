"""Reading the engines' logs: password-literal redaction, mysql.slow_log rows (recorded replies), the 409
without log_output=TABLE, MongoDB's system.profile, and the 501 of the engines the agent cannot read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubetrove.agent.engines.base import Conflict, Unsupported
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mariadb.driver import MariaDBDriver
from kubetrove.agent.engines.mongodb import profile
from kubetrove.agent.engines.mongodb.driver import MongoDBDriver
from kubetrove.agent.engines.mysql.driver import MySQLDriver
from kubetrove.agent.engines.mysql_family import logs as mysql_logs
from kubetrove.agent.engines.mysql_family.driver import MySQLFamilyDriver
from kubetrove.agent.logs import Redactor, redact_statement
from tests.unit.agent import recorded_mongodb as rec
from tests.unit.agent.recorded_mysql import RecordedConnection, Reply

STARTED = datetime(2026, 12, 6, 20, 1, 2, 345678)  # naive: the session's '+00:00' TIMESTAMP


@pytest.mark.parametrize(
    ("before", "literal", "after"),
    [
        ("CREATE USER 'a'@'%' IDENTIFIED BY ", "'pw'", ""),
        ("ALTER USER a IDENTIFIED BY ", r"'it''s \' pw'", " ACCOUNT LOCK"),
        ("alter user a identified with caching_sha2_password by ", "'pw'", ""),
        ("ALTER USER a IDENTIFIED WITH 'caching_sha2_password' AS ", "'$A$005$x'", ""),
        ("CREATE USER a IDENTIFIED BY PASSWORD ", "'*94BDCEBE19'", ""),
        ("SET PASSWORD FOR a = PASSWORD(", "'pw'", ")"),
        ("SET PASSWORD = ", "'pw'", ""),
        ("CHANGE MASTER TO MASTER_HOST='h', MASTER_PASSWORD=", "'pw'", ", MASTER_PORT=3306"),
        ("CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = ", '"pw"', ""),
        ("CREATE ROLE r LOGIN ENCRYPTED PASSWORD ", "'pw'", ""),
        ("CREATE ROLE r WITH PASSWORD = ", "'pw'", " AND LOGIN = true"),
        ('{"createUser": "u", "pwd": ', '"pw"', ', "roles": []}'),
    ],
)
def test_password_literals_are_redacted_keeping_the_clause(before: str, literal: str, after: str) -> None:
    quote = literal[0]
    assert redact_statement(before + literal + after) == f"{before}{quote}***{quote}{after}"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT password FROM users WHERE name = 'pw'",
        "SELECT SLEEP(0.2) /* kubetrove */",
        "SELECT 'my-password', 'x'",  # a literal ending in the word
        "SELECT 'password' AS p",
    ],
)
def test_statements_without_a_password_clause_are_unchanged(statement: str) -> None:
    assert redact_statement(statement) == statement


def test_scrub_statement_also_removes_the_known_secrets() -> None:
    redactor = Redactor()
    redactor.add("agent-password")
    assert redactor.scrub_statement("SELECT 'agent-password', 1 IDENTIFIED BY 'x'") == (
        "SELECT '***', 1 IDENTIFIED BY '***'"
    )


# -- MySQL and MariaDB: mysql.slow_log ----------------------------------------------------------------


def slow_row(i: int, **overrides: Any) -> dict[str, Any]:
    """A mysql.slow_log row as pymysql returns it from MySQL 8.4 (sql_text is a MEDIUMBLOB: bytes)."""
    row = {
        "start_time": STARTED + timedelta(seconds=i),
        "query_time": timedelta(seconds=1, microseconds=500000),
        "user_host": "app[app] @  [10.0.0.5]",
        "db": "orders",
        "rows_examined": 42,
        "sql_text": f"SELECT SLEEP(1.5) /* q{i} */".encode(),
    }
    return row | overrides


def driver_with(
    replies: Mapping[str, Reply], cls: type[MySQLFamilyDriver] = MySQLDriver
) -> tuple[MySQLFamilyDriver, RecordedConnection]:
    conn = RecordedConnection(replies)
    driver = cls(EngineConfig(user="agent", password="x"))
    driver._connect = lambda: conn  # type: ignore[method-assign]
    return driver, conn


@pytest.mark.parametrize("cls", [MySQLDriver, MariaDBDriver])
def test_slow_log_rows_become_entries_oldest_first_read_quietly_in_utc(cls: type[MySQLFamilyDriver]) -> None:
    newest_first = [slow_row(2), slow_row(1, db=None, user_host="root[root] @ localhost []")]
    driver, conn = driver_with(
        {"SELECT @@GLOBAL.log_output": [{"log_output": "FILE,TABLE"}], "SELECT start_time": newest_first},
        cls,
    )
    since = datetime(2026, 12, 6, 21, 0, tzinfo=timezone_plus_one())
    entries = driver.slow_queries(7, since)
    assert conn.sent[1:] == [
        "SET SESSION long_query_time = 31536000",  # its own read is no slow query
        "SET SESSION time_zone = '+00:00'",
        "SELECT start_time, query_time, user_host, db, rows_examined, sql_text FROM mysql.slow_log"
        " WHERE start_time >= '2026-12-06 20:00:00' ORDER BY start_time DESC LIMIT 7",
    ]
    assert [e.query for e in entries] == ["SELECT SLEEP(1.5) /* q1 */", "SELECT SLEEP(1.5) /* q2 */"]
    first = entries[0]
    assert first.time == STARTED.replace(tzinfo=UTC) + timedelta(seconds=1)
    assert (first.duration_seconds, first.user, first.database) == (1.5, "root", None)
    assert first.rows_examined == 42
    assert (entries[1].user, entries[1].database) == ("app", "orders")


def timezone_plus_one() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=1))


@pytest.mark.parametrize("log_output", ["FILE", "NONE"])
def test_slow_log_without_table_output_is_a_conflict_naming_log_output(log_output: str) -> None:
    driver, conn = driver_with({"SELECT @@GLOBAL.log_output": [{"log_output": log_output}]})
    with pytest.raises(Conflict, match=f"log_output={log_output}.*include TABLE"):
        driver.slow_queries(10, None)
    assert not any("mysql.slow_log" in s for s in conn.sent)


@pytest.mark.parametrize(
    ("user_host", "user"),
    [
        ("app[app] @  [10.0.0.5]", "app"),
        ("root[root] @ localhost []", "root"),
        ("[] @ localhost []", None),  # a thread without a login (the server's own)
        ("garbage", None),
    ],
)
def test_the_login_user_is_read_from_user_host(user_host: str, user: str | None) -> None:
    assert mysql_logs.login_user(user_host) == user


def test_query_time_as_text_and_log_output_lists() -> None:
    entry = mysql_logs.slow_query(slow_row(0, query_time="00:01:02.250000", sql_text="SELECT 1"))
    assert entry.duration_seconds == 62.25 and entry.query == "SELECT 1"
    assert mysql_logs.log_output_has_table("table") and mysql_logs.log_output_has_table("FILE, TABLE")
    assert not mysql_logs.log_output_has_table("FILE")
    assert mysql_logs.since_utc(None) == mysql_logs.EPOCH


def test_mysql_error_log_reads_performance_schema_mariadb_has_none() -> None:
    row = {"logged": STARTED, "prio": "Warning", "code": "MY-010068", "subsystem": "Server", "data": "x"}
    driver, conn = driver_with({"SELECT @@GLOBAL.performance_schema": [{"ps": 1}], "SELECT LOGGED": [row]})
    (entry,) = driver.error_log(5, None)
    assert conn.sent[-1].endswith("WHERE LOGGED >= '1970-01-01 00:00:00' ORDER BY LOGGED DESC LIMIT 5")
    assert (entry.time, entry.level, entry.message) == (
        STARTED.replace(tzinfo=UTC),
        "Warning",
        "[MY-010068] [Server] x",
    )
    with pytest.raises(Unsupported, match="kubectl logs"):
        MariaDBDriver(EngineConfig()).error_log(5, None)


def test_mysql_error_log_without_the_performance_schema_is_a_conflict() -> None:
    driver, conn = driver_with({"SELECT @@GLOBAL.performance_schema": [{"ps": 0}]})
    with pytest.raises(Conflict, match="performance_schema parameter to ON"):
        driver.error_log(5, None)
    assert not any("error_log" in s for s in conn.sent)


# -- MongoDB: system.profile ---------------------------------------------------------------------------


def profiled(db: str, i: int, **overrides: Any) -> dict[str, Any]:
    """A system.profile document as mongod 6.0 writes it (the fields read; ts is a naive UTC datetime)."""
    doc = {
        "op": "command",
        "ns": f"{db}.orders",
        "command": {"find": "orders", "filter": {"n": i}, "lsid": {"id": "x"}, "$db": db},
        "docsExamined": i,
        "millis": 250,
        "ts": STARTED + timedelta(seconds=i),
        "user": "app@admin",
    }
    return doc | overrides


def test_mongodb_reads_the_profile_of_every_database_and_keeps_the_newest() -> None:
    per_db = {"admin": [profiled("admin", 5)], "orders": [profiled("orders", 9), profiled("orders", 1)]}

    def find(cmd: Mapping[str, Any]) -> Mapping[str, Any]:
        db = cmd["filter"]["ns"]["$ne"].removesuffix(".system.profile")
        return {"cursor": {"firstBatch": per_db.get(db, []), "id": 0}, "ok": 1.0}

    databases = [{"name": n} for n in ("admin", "config", "local", "orders")]
    client = rec.RecordedClient({"listDatabases": {"databases": databases, "ok": 1.0}, "find": find})
    driver = MongoDBDriver(EngineConfig(user="agent", password="x"), client=client)
    entries = driver.slow_queries(2, None)
    assert [db for db, cmd in client.sent if "find" in cmd] == ["admin", "orders"]  # not config, local
    assert [e.rows_examined for e in entries] == [5, 9]
    newest = entries[-1]
    assert newest.query == '{"find": "orders", "filter": {"n": 9}}'  # no session plumbing
    assert (newest.database, newest.user, newest.duration_seconds) == ("orders", "app@admin", 0.25)
    assert newest.time == (STARTED + timedelta(seconds=9)).replace(tzinfo=UTC)


def test_the_profile_find_is_bounded_and_filtered_by_since() -> None:
    since = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    assert profile.find_command("orders", 3, since) == {
        "find": "system.profile",
        "filter": {"ns": {"$ne": "orders.system.profile"}, "ts": {"$gte": since}},
        "sort": {"ts": -1},
        "limit": 3,
        "batchSize": 3,
        "singleBatch": True,
    }
    legacy = profile.slow_query(profiled("orders", 1, command=None, op="remove", user=""))
    assert (legacy.query, legacy.user) == ("remove", None)


def test_mongodb_error_log_is_getlog_parsed_bounded_and_filtered_by_since() -> None:
    lines = [
        json.dumps(
            {
                "t": {"$date": f"2026-12-06T20:00:0{i}.000+00:00"},
                "s": severity,
                "c": "NETWORK",
                "msg": f"m{i}",
                "attr": {"n": i},
            }
        )
        for i, severity in enumerate(["I", "W", "E", "F", "D2"])
    ] + ["not json"]
    client = rec.RecordedClient({"getLog": {"totalLinesWritten": 6, "log": lines, "ok": 1.0}})
    driver = MongoDBDriver(EngineConfig(user="agent", password="x"), client=client)
    assert [e.message for e in driver.error_log(2, None)] == ['[NETWORK] m4 {"n": 4}', "not json"]
    since = datetime(2026, 12, 6, 20, 0, 2, tzinfo=UTC)
    entries = driver.error_log(10, since)  # the line without a time is left out
    assert [(e.level, e.time) for e in entries] == [
        ("Error", since),
        ("Fatal", since + timedelta(seconds=1)),
        ("Debug", since + timedelta(seconds=2)),
    ]
    assert client.sent[-1] == ("admin", {"getLog": "global"})
