"""The engine containers' start scripts, run for real by /bin/sh with the image entrypoint stubbed.

They carry per-pod values the shared config cannot (MySQL/MariaDB server_id, the Cassandra seed, the
MongoDB key file), so a quoting slip would only show up in a running pod: run them here instead.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from kubetrove.api.common import Engine
from kubetrove.datastores.cassandra import strategy as cassandra
from kubetrove.datastores.mongodb import strategy as mongodb
from kubetrove.datastores.registry import REGISTRY


def run(
    command: tuple[str, ...], args: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
    )


def stub_entrypoint(command: tuple[str, ...], *replace: tuple[str, str]) -> tuple[str, ...]:
    script = command[2].replace("exec docker-entrypoint.sh", "exec echo")
    for old, new in replace:
        script = script.replace(old, new)
    return (*command[:2], script, *command[3:])


@pytest.mark.parametrize(("engine", "binary"), [(Engine.MYSQL, "mysqld"), (Engine.MARIADB, "mariadbd")])
@pytest.mark.parametrize(("hostname", "server_id"), [("orders-0", 100), ("my-db-12", 112)])
def test_server_id_follows_the_ordinal(engine: Engine, binary: str, hostname: str, server_id: int) -> None:
    c = REGISTRY[engine].container(next(iter(REGISTRY[engine].versions)))
    done = run(stub_entrypoint(c.command), c.args, {"HOSTNAME": hostname})
    assert (done.returncode, done.stdout) == (0, f"{binary} --server-id={server_id}\n")


@pytest.mark.parametrize("hostname", ["standalone", "db-", "db-x1", ""])
def test_server_id_refuses_a_hostname_without_ordinal(hostname: str) -> None:
    c = REGISTRY[Engine.MYSQL].container("9.7")
    done = run(stub_entrypoint(c.command), c.args, {"HOSTNAME": hostname})
    assert done.returncode == 1 and done.stdout == ""
    assert "no StatefulSet ordinal" in done.stderr


def test_mongodb_writes_a_private_base64_key_file(tmp_path: Path) -> None:
    key = tmp_path / "keyfile"
    c = REGISTRY[Engine.MONGODB].container("6.0")
    done = run(
        stub_entrypoint(c.command, (mongodb.KEY_FILE, str(key))),
        c.args,
        {"KUBETROVE_REPLICA_SET_KEY": "ab-_cd"},
    )
    assert (done.returncode, done.stdout) == (0, "mongod --config /etc/kubetrove/mongod.conf\n")
    assert key.read_text() == "ab+/cd"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_cassandra_seeds_from_ordinal_zero(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "etc" / "cassandra.yaml").write_text(REGISTRY[Engine.CASSANDRA].render_config({}))
    c = REGISTRY[Engine.CASSANDRA].container("5.0")
    command = stub_entrypoint(
        c.command,
        (cassandra.CONFIG_FILE.mount_dir, str(tmp_path / "etc")),
        (cassandra.RUN_DIR, str(tmp_path / "run")),
        ("exec cassandra", "exec echo cassandra"),
        ("$(hostname -d)", "ring-headless.ns.svc.cluster.local"),
    )
    done = run(command, c.args, {"HOSTNAME": "ring-2"})
    assert (done.returncode, done.stdout) == (
        0,
        f"cassandra -f -Dcassandra.config=file://{tmp_path}/run/cassandra.yaml\n",
    )
    rendered = (tmp_path / "run" / "cassandra.yaml").read_text()
    assert "  - seeds: 'ring-0.ring-headless.ns.svc.cluster.local'\n" in rendered
    assert cassandra.SEED_PLACEHOLDER not in rendered
