"""The agent's half of the PostgreSQL rejoin file protocol (the script's half: test_postgresql_start.py)."""

from __future__ import annotations

import stat
from pathlib import Path

from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.postgresql.rejoin import RejoinFiles, rejoin_files
from kubetrove.datastores.postgresql import start


def test_only_a_pod_has_rejoin_files() -> None:
    assert rejoin_files(EngineConfig()) is None
    files = rejoin_files(EngineConfig(options={"demoted_marker": start.REJOIN_FILE}))
    assert files is not None and str(files.request) == start.REJOIN_FILE
    # The start script writes pg_rewind's output where the agent reads it.
    assert 'failed="$state/rewind-failed"' in start.SCRIPT and files.failed.name == "rewind-failed"


def test_a_request_is_private_complete_and_cleared_by_a_promotion(tmp_path: Path) -> None:
    files = RejoinFiles(tmp_path / "kubetrove" / "rejoin")
    assert not files.pending() and files.failure() is None
    files.ask("host=pg-1 port=5432 user=postgres password=s3cret")
    assert files.request.read_text() == "host=pg-1 port=5432 user=postgres password=s3cret\n"
    assert stat.S_IMODE(files.request.stat().st_mode) == 0o600
    assert [p.name for p in files.request.parent.iterdir()] == ["rejoin"]  # no temporary file left
    files.failed.write_text("pg_rewind: error: could not find previous WAL record\n")
    assert files.failure() == "pg_rewind: error: could not find previous WAL record"
    files.clear()
    assert not files.pending() and files.failure() is None
    files.clear()  # idempotent


def test_the_replication_password_goes_to_a_private_libpq_password_file(tmp_path: Path) -> None:
    files = RejoinFiles(tmp_path / "kubetrove" / "rejoin")
    path = files.write_passfile("pg-1.pg-headless", 5432, "repl", "pa:ss\\word")
    assert path == tmp_path / "kubetrove" / "replication.pgpass"
    # https://www.postgresql.org/docs/15/libpq-pgpass.html: ':' and '\' escaped; any database.
    assert path.read_text() == "pg-1.pg-headless:5432:*:repl:pa\\:ss\\\\word\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # libpq ignores a group- or world-readable file
    assert sorted(p.name for p in path.parent.iterdir()) == ["replication.pgpass"]  # no temporary left
    files.write_passfile("pg-2.pg-headless", 5432, "repl", "new")  # a failover repoints: replaced whole
    assert path.read_text() == "pg-2.pg-headless:5432:*:repl:new\n"
