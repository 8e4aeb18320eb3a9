"""Cassandra's system_views.system_logs as the agent parses it, on messages a real Cassandra 5.0.9 wrote
(MonitoringTask's reports; the timed-out forms from its FailedOperation.getLogMessage), and the image's
logback.xml that fills the table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from kubetrove.agent.engines.cassandra import logs

AT = datetime(2026, 12, 7, 1, 38, 29, 349000)  # naive UTC, as cassandra-driver returns a timestamp
LOGBACK = Path(__file__).resolve().parents[3] / "hack" / "images" / "files" / "cassandra-conf" / "logback.xml"


def row(message: str, logger: str = logs.MONITORING_LOGGER, level: str = "DEBUG") -> SimpleNamespace:
    return SimpleNamespace(timestamp=AT, order_in_millisecond=0, logger=logger, level=level, message=message)


def test_each_read_of_a_report_is_a_slow_query_with_its_longest_time() -> None:
    report = row(
        "3 operations were slow in the last 5001 msecs:\n"
        "<SELECT * FROM shop.t WHERE v = 'x' LIMIT 5000>, time 18 msec - slow timeout 10 msec\n"
        "<SELECT * FROM system_auth.roles WHERE role = 'cassandra' ALLOW FILTERING>, was slow 2 times:"
        " avg/min/max 14/12/16 msec - slow timeout 10 msec\n"
        '<SELECT * FROM "My ""KS""".t LIMIT 100>, time 30 msec - slow timeout 10 msec/cross-node\n'
        "a line of another form"
    )
    assert logs.is_slow_report(report)
    slow = logs.slow_queries(report)
    assert {q.time for q in slow} == {AT.replace(tzinfo=UTC)}  # the report's time
    assert [(q.query, q.duration_seconds, q.database) for q in slow] == [
        ("SELECT * FROM shop.t WHERE v = 'x' LIMIT 5000", 0.018, "shop"),
        ("SELECT * FROM system_auth.roles WHERE role = 'cassandra' ALLOW FILTERING", 0.016, "system_auth"),
        ('SELECT * FROM "My ""KS""".t LIMIT 100', 0.03, 'My "KS"'),
    ]


def test_timed_out_reads_are_slow_queries_too() -> None:
    report = row(
        "2 operations timed out in the last 5000 msecs:\n"
        "<SELECT * FROM shop.t>, total time 5003 msec, timeout 5000 msec\n"
        "<SELECT * FROM shop.u> timed out 3 times, avg/min/max 5001/5000/5007 msec,"
        " timeout 5000 msec/cross-node"
    )
    assert [(q.query, q.duration_seconds) for q in logs.slow_queries(report)] == [
        ("SELECT * FROM shop.t", 5.003),
        ("SELECT * FROM shop.u", 5.007),
    ]


def test_the_rest_of_the_table_is_the_error_log() -> None:
    info = row("Some operations were slow, details available at debug level (debug.log)", level="INFO")
    assert not logs.is_slow_report(info)  # MonitoringTask's INFO pointer is an ordinary record
    warn = row("Directory /data doesn't exist", "org.apache.cassandra.service.StartupChecks", "WARN")
    assert not logs.is_slow_report(warn) and logs.slow_queries(warn) == []
    entry = logs.error_entry(warn)
    assert (entry.time, entry.level, entry.message) == (
        AT.replace(tzinfo=UTC),
        "WARN",
        "[StartupChecks] Directory /data doesn't exist",
    )


def test_the_image_logback_fills_the_table_and_keeps_the_console_at_info() -> None:
    root = ET.parse(LOGBACK).getroot()
    appenders = {a.get("name"): a for a in root.iter("appender")}
    assert appenders["CQLLOG"].get("class") == "org.apache.cassandra.utils.logging.VirtualTableAppender"
    assert appenders["STDOUT"].findtext("filter/level") == "INFO"  # the DEBUG reports stay off the console
    assert {r.get("ref") for r in root.iter("appender-ref")} == {"STDOUT", "CQLLOG"}
    (monitoring,) = [lg for lg in root.iter("logger") if lg.get("name") == logs.MONITORING_LOGGER]
    assert monitoring.get("level") == "DEBUG"
