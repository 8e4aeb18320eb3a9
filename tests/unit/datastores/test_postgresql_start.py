"""The PostgreSQL engine container's start script, run for real by /bin/sh with the PostgreSQL tools stubbed.

Each stub is a tiny script on PATH that records how it was called; "postgres" is a Python stub that
exits on SIGINT (the fast shutdown the script asks for). The real tools run in
tests/integration/test_postgresql_rejoin.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetrove.api.common import Engine
from kubetrove.datastores.postgresql import start
from kubetrove.datastores.postgresql import strategy as pg
from kubetrove.datastores.registry import REGISTRY

CONFIG = "/etc/kt/postgresql.conf"
# A server that writes "started" to its log and stops (exit 0) on SIGINT, as postmaster does.
SERVER = (
    "import pathlib, signal, sys, time\n"
    "log = pathlib.Path(sys.argv[1])\n"
    "signal.signal(signal.SIGINT, lambda *_: sys.exit(0))\n"
    "log.write_text(log.read_text() + 'started\\n' if log.exists() else 'started\\n')\n"
    "time.sleep(120)\n"
)


class Pod:
    """A fake pod on the host: the script's directories under tmp and stubbed tools on PATH."""

    def __init__(self, tmp: Path, hostname: str) -> None:
        self.tmp, self.hostname = tmp, hostname
        self.bin, self.state, self.pgdata = tmp / "bin", tmp / "state", tmp / "data" / "15" / "docker"
        self.calls, self.server_log = tmp / "calls", tmp / "server.log"
        self.bin.mkdir()
        self.stub("pg_isready", "exit 2")  # nobody answers
        self.stub("psql", "exit 0")
        self.stub("pg_rewind", "exit 0")
        self.stub("pg_basebackup", "exit 1")
        self.proc: subprocess.Popen[str] | None = None

    def stub(self, tool: str, body: str) -> None:
        path = self.bin / tool
        path.write_text(f'#!/bin/sh\necho "{tool} $*" >> {self.calls}\n{body}\n')
        path.chmod(0o755)

    def calls_of(self, tool: str) -> list[str]:
        lines = self.calls.read_text().splitlines() if self.calls.exists() else []
        return [line for line in lines if line.startswith(f"{tool} ")]

    def has_data(self) -> None:
        self.pgdata.mkdir(parents=True)
        (self.pgdata / "PG_VERSION").write_text("15\n")

    def run(self, *server: str) -> subprocess.Popen[str]:
        text = start.script(
            CONFIG, 5432, "postgres", state_dir=str(self.state), hba_file=str(self.tmp / "hba.conf"),
            clone_sources=("a-rw", "b"),
        )  # fmt: skip
        env = {"PATH": f"{self.bin}:{os.environ['PATH']}", "HOSTNAME": self.hostname,
               "PGDATA": str(self.pgdata), "POSTGRES_PASSWORD": "pw"}  # fmt: skip
        server = server or (sys.executable, "-c", SERVER, str(self.server_log))
        self.proc = subprocess.Popen(
            ["sh", "-c", text, "kubetrove-postgres", *server],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        return self.proc

    def starts(self) -> int:
        return self.server_log.read_text().count("started") if self.server_log.exists() else 0

    def stop(self) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture
def pod0(tmp_path: Path) -> Iterator[Pod]:
    pod = Pod(tmp_path, "db-0")
    yield pod
    if pod.proc and pod.proc.poll() is None:
        pod.proc.kill()
        pod.proc.wait()


def wait_for(check: object, what: str) -> None:
    """Poll ``check()`` (a bounded number of times; no wall-clock assertion)."""
    import time

    for _ in range(300):
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def test_the_strategy_runs_the_script_around_the_image_entrypoint() -> None:
    c = REGISTRY[Engine.POSTGRESQL].container("15")
    assert c.command[:2] == ("sh", "-c") and c.command[3] == "kubetrove-postgres"
    assert c.command[2] == start.script(
        f"{pg.CONFIG_FILE.mount_dir}/{pg.CONFIG_FILE.file_name}", 5432, "postgres"
    )
    assert c.args == (
        "docker-entrypoint.sh",
        "postgres",
        "-c",
        "config_file=/etc/postgresql/kubetrove/postgresql.conf",
    )
    assert c.demoted_marker == start.REJOIN_FILE and c.demoted_marker.startswith(c.data_dir + "/")
    assert not c.demoted_marker.startswith(c.env["PGDATA"])  # pg_basebackup/pg_rewind must not copy it
    assert f"hba_file = '{start.HBA_FILE}'" in REGISTRY[Engine.POSTGRESQL].render_config({})
    assert start.HBA_FILE.startswith(pg.SOCKET_DIR + "/")  # a scratch emptyDir: writable, per pod


def test_pod_defaults_probe_the_rw_service_then_every_other_member(tmp_path: Path) -> None:
    text = start.script(CONFIG, 5432, "postgres").replace("pg_isready -q", "echo probe")
    text = text.replace('"$@" &', "exit 0 &")
    env = {
        "PATH": os.environ["PATH"],
        "HOSTNAME": "orders-1",
        "PGDATA": str(tmp_path / "d"),
        "POSTGRES_PASSWORD": "",
    }
    sources = subprocess.run(["sh", "-c", text.split("clone() {")[0] + "sources"], env=env,
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert sources[:3] == ["orders-rw", "orders-0.orders-headless", "orders-2.orders-headless"]
    assert len(sources) == start.MAX_MEMBERS and "orders-1.orders-headless" not in sources


def test_ordinal_zero_initializes_when_no_member_answers(pod0: Pod) -> None:
    proc = pod0.run("echo", "entrypoint", "postgres")
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (0, "entrypoint postgres\n"), err
    assert "initializing a new database" in err
    assert pod0.calls_of("pg_isready") == [f"pg_isready -q -h {h} -p 5432 -t 3" for h in ("a-rw", "b")]
    assert (pod0.tmp / "hba.conf").read_text().splitlines() == list(start.HBA_LINES)
    assert pod0.state.is_dir()


def test_other_ordinals_wait_for_a_source_and_stop_on_sigterm(tmp_path: Path) -> None:
    pod = Pod(tmp_path, "db-2")
    pod.run()
    wait_for(lambda: len(pod.calls_of("pg_isready")) >= 4, "two rounds of probes")
    code, err = pod.stop()
    assert code == 143 and "waiting for a member to clone from" in err
    assert pod.starts() == 0 and not pod.pgdata.exists()


def test_an_empty_member_clones_from_the_first_answering_source(tmp_path: Path) -> None:
    pod = Pod(tmp_path, "db-1")
    pod.stub("pg_isready", '[ "$3" = b ]')  # -q -h <host>: only "b" answers
    pod.stub(
        "pg_basebackup", 'while [ "$1" != -D ]; do shift; done; mkdir -p "$2"; echo 15 > "$2/PG_VERSION"'
    )
    pod.state.mkdir()
    (pod.state / "rejoin").write_text("host=old\n")  # a clone makes a pending rejoin moot
    pod.run()
    wait_for(lambda: pod.starts() == 1, "the server started")
    assert pod.calls_of("pg_basebackup") == [
        f"pg_basebackup -h b -p 5432 -U postgres -D {pod.pgdata}.clone -R -X stream -c fast"
    ]
    assert (pod.pgdata / "PG_VERSION").exists() and not (pod.state / "rejoin").exists()
    assert pod.stop()[0] == 0


def test_a_rejoin_request_restarts_the_server_after_pg_rewind(pod0: Pod) -> None:
    pod0.has_data()
    pod0.run()
    wait_for(lambda: pod0.starts() == 1, "the first start")
    assert pod0.calls_of("pg_rewind") == []
    (pod0.state / "rejoin").write_text("host=db-1 port=5432 user=postgres password=x\n")
    wait_for(lambda: pod0.starts() == 2, "the restart")
    src = "host=db-1 port=5432 user=postgres password=x dbname=postgres"
    assert pod0.calls_of("psql") == [f"psql {src} connect_timeout=3 -XAtqc CHECKPOINT"]
    assert pod0.calls_of("pg_rewind") == [
        f"pg_rewind -D {pod0.pgdata} --source-server={src} -R --config-file={CONFIG}"
    ]
    assert not (pod0.state / "rejoin").exists() and not (pod0.state / "rewind-failed").exists()
    code, err = pod0.stop()
    assert code == 0 and "rejoin requested: stopping postgres" in err


def test_a_failed_rewind_keeps_the_data_and_says_why(pod0: Pod) -> None:
    pod0.has_data()
    pod0.stub("pg_rewind", "echo 'source and target clusters are from different systems' >&2; exit 1")
    pod0.state.mkdir()
    (pod0.state / "rejoin").write_text("host=other\n")
    pod0.run()
    wait_for(lambda: pod0.starts() == 1, "the start despite the failure")
    assert (pod0.pgdata / "PG_VERSION").exists()
    assert "different systems" in (pod0.state / "rewind-failed").read_text()
    assert not (pod0.state / "rejoin").exists()
    assert pod0.stop()[0] == 0


def test_a_crash_of_the_server_ends_the_container(pod0: Pod) -> None:
    pod0.has_data()
    proc = pod0.run("sh", "-c", "exit 3")
    proc.communicate(timeout=60)
    assert proc.returncode == 3  # the kubelet restarts the container; a crash is not a rejoin


@pytest.mark.parametrize("hostname", ["standalone", "db-", "db-x1"])
def test_a_hostname_without_ordinal_is_refused(tmp_path: Path, hostname: str) -> None:
    proc = Pod(tmp_path, hostname).run()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "no StatefulSet ordinal" in err
