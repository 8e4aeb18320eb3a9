"""PostgreSQL's CSV server log as the agent parses it, on lines a real PostgreSQL 15.18 wrote (csvlog,
log_statement = all, log_min_duration_statement = 0; only names and markers changed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kubetrove.agent.engines.postgresql import logs

HEAD = '2026-12-07 01:34:26.{ms} UTC,"kubetrove","app",18971,"127.0.0.1:38640",6b160d22.4a1b'
TAIL = ',,,,,,,,,"","client backend",,0'
LINES = [
    "2026-12-07 01:34:25.707 UTC,,,18960,,6b160d21.4a10,5,,2026-12-07 01:34:25 UTC,,0,LOG,00000,"
    '"database system is ready to accept connections",,,,,,,,,"","postmaster",,0',
    # log_statement = all wrote the statement: its duration record has no text.
    f'{HEAD.format(ms="179")},1,"idle",2026-12-07 01:34:26 UTC,3/2,0,LOG,00000,"statement: SELECT 1"{TAIL}',
    f'{HEAD.format(ms="180")},2,"SELECT",2026-12-07 01:34:26 UTC,3/0,0,LOG,00000,"duration: 0.402 ms"{TAIL}',
    # The extended protocol, with a bound value spanning two lines inside its quotes.
    f'{HEAD.format(ms="210")},3,"BIND",2026-12-07 01:34:26 UTC,3/6,0,LOG,00000,'
    '"duration: 0.101 ms  bind <unnamed>: SELECT $1::text","parameters: $1 = \'x\ny\'"' + TAIL[1:],
    f'{HEAD.format(ms="211")},4,"SELECT",2026-12-07 01:34:26 UTC,3/6,0,LOG,00000,'
    '"execute <unnamed>: SELECT $1::text","parameters: $1 = \'s3cret\'"' + TAIL[1:],
    f'{HEAD.format(ms="212")},5,"SELECT",2026-12-07 01:34:26 UTC,3/6,0,LOG,00000,"duration: 1500.5 ms"{TAIL}',
    # A failing statement: the query column holds it.
    f'{HEAD.format(ms="226")},6,"SELECT",2026-12-07 01:34:26 UTC,3/8,0,ERROR,22012,"division by zero"'
    ',,"check the divisor",,,,"SELECT 1/0",,,"","client backend",,0',
    f'{HEAD.format(ms="300")},7,"SELECT",2026-12-07 01:34:26 UTC,3/9,0,LOG,00000,'
    '"duration: 250.000 ms  statement: SELECT pg_sleep(0.25)"' + TAIL,
]
TEXT = "\n".join(LINES) + "\n"
AT = datetime(2026, 12, 7, 1, 34, 26, tzinfo=UTC)


def test_slow_statements_and_the_rest_of_the_log() -> None:
    slow, errors = logs.split(logs.records(logs.window_text(TEXT.encode(), cut=False)))
    assert [(s.query, s.duration_seconds, s.user, s.database, s.time) for s in slow] == [
        ("SELECT 1", 0.000402, "kubetrove", "app", AT + timedelta(milliseconds=180)),
        ("bind <unnamed>: SELECT $1::text", 0.000101, "kubetrove", "app", AT + timedelta(milliseconds=210)),
        ("execute <unnamed>: SELECT $1::text", 1.5005, "kubetrove", "app", AT + timedelta(milliseconds=212)),
        ("SELECT pg_sleep(0.25)", 0.25, "kubetrove", "app", AT + timedelta(milliseconds=300)),
    ]
    assert [(e.level, e.message) for e in errors] == [
        ("LOG", "database system is ready to accept connections"),
        ("LOG", "statement: SELECT 1"),
        ("LOG", "execute <unnamed>: SELECT $1::text"),  # the bound values' DETAIL left out
        ("ERROR", "[22012] division by zero\nHINT: check the divisor\nSTATEMENT: SELECT 1/0"),
    ]
    assert errors[0].time == datetime(2026, 12, 7, 1, 34, 25, 707000, tzinfo=UTC)


def test_a_window_that_cuts_a_file_starts_at_the_first_whole_record() -> None:
    data = TEXT.encode()
    inside = data.index(b"y'") - 1  # inside the two-line bind record: its second line is no record
    slow, errors = logs.split(logs.records(logs.window_text(data[inside:], cut=True)))
    # The duration record at .212 follows an "execute" record that is whole: paired.
    assert [s.query for s in slow] == ["execute <unnamed>: SELECT $1::text", "SELECT pg_sleep(0.25)"]
    assert [e.level for e in errors] == ["LOG", "ERROR"]
    assert logs.window_text(b"no record starts here\n", cut=True) == ""
    # A character cut at the window's start is replaced, not an error.
    assert logs.window_text("é".encode()[1:] + b"\n" + data, cut=True) == TEXT


def test_a_record_still_being_written_ends_the_window() -> None:
    partial = TEXT + LINES[4][: LINES[4].index("execute") + 5]  # the collector is writing its message
    slow, errors = logs.split(logs.records(partial))
    assert len(slow) == 4 and len(errors) == 4


def test_a_duration_without_a_statement_seen_is_not_served() -> None:
    slow, _ = logs.split(logs.records(LINES[2] + "\n"))
    assert slow == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-07 01:34:26.180 UTC", AT + timedelta(milliseconds=180)),
        ("2026-12-07 01:34:26 GMT", AT),
        ("2026-12-07 01:34:26.180 CET", None),  # an abbreviation names no offset the agent can trust
        ("", None),
    ],
)
def test_log_time(value: str, expected: datetime | None) -> None:
    assert logs.log_time(value) == expected


def test_settings_and_file_times() -> None:
    assert logs.writes_csv("on", "csvlog") and logs.writes_csv("on", "stderr, csvlog")
    assert not logs.writes_csv("off", "csvlog") and not logs.writes_csv("on", "stderr")
    # pg_ls_logdir() gives whole seconds: a file written in the second of ``since`` may hold it.
    assert not logs.older(AT, AT + timedelta(milliseconds=999)) and logs.older(AT, AT + timedelta(seconds=1))
    assert not logs.older(AT, None)
