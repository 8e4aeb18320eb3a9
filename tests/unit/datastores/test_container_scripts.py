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


def _cassandra_script(
    tmp_path: Path, *replace: tuple[str, str], parameters: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The start script on files under ``tmp_path`` (config, run dir, data dir), ``cassandra`` echoed."""
    for d in ("etc", "run", "data"):
        (tmp_path / d).mkdir(exist_ok=True)
    config = REGISTRY[Engine.CASSANDRA].render_config(parameters or {})
    (tmp_path / "etc" / "cassandra.yaml").write_text(config)
    c = REGISTRY[Engine.CASSANDRA].container("5.0")
    return stub_entrypoint(
        c.command,
        (cassandra.CONFIG_FILE.mount_dir, str(tmp_path / "etc")),
        (cassandra.RUN_DIR, str(tmp_path / "run")),
        (cassandra.DATA_DIR, str(tmp_path / "data")),
        ("exec cassandra", "exec echo cassandra"),
        ("$(hostname -d)", "ring-headless.ns.svc.cluster.local"),
        ("$(hostname -i | cut -d' ' -f1)", "10.85.0.7"),
        *replace,
    )


def test_cassandra_seeds_from_ordinal_zero(tmp_path: Path) -> None:
    (tmp_path / "data" / "data" / "system").mkdir(parents=True)  # not a first boot: no wait
    c = REGISTRY[Engine.CASSANDRA].container("5.0")
    command = _cassandra_script(tmp_path)
    done = run(command, c.args, {"HOSTNAME": "ring-2"})
    assert (done.returncode, done.stdout) == (
        0,
        f"cassandra -f -Dcassandra.config=file://{tmp_path}/run/cassandra.yaml\n",
    )
    rendered = (tmp_path / "run" / "cassandra.yaml").read_text()
    assert "  - seeds: 'ring-0.ring-headless.ns.svc.cluster.local'\n" in rendered
    assert cassandra.SEED_PLACEHOLDER not in rendered
    # CQL for the agent on 127.0.0.1 and for everyone else on the pod's IP, which the node advertises.
    assert rendered.endswith("rpc_address: 0.0.0.0\nbroadcast_rpc_address: 10.85.0.7\n")


@pytest.mark.parametrize("listening", [True, False])
def test_a_new_cassandra_member_waits_for_the_one_before_it(tmp_path: Path, listening: bool) -> None:
    """First boot of member 1: it waits until member 0 serves CQL (it has joined), then starts; when
    member 0 never does, it starts after the wait anyway."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        if listening:
            server.listen()
        port = server.getsockname()[1]
        previous = f"ring-0.ring-headless.ns.svc.cluster.local/{cassandra.CQL_PORT}"
        command = _cassandra_script(
            tmp_path,
            (f"$previous/{cassandra.CQL_PORT}", f"127.0.0.1/{port}"),
            (f"+ {cassandra.WAIT_FOR_PREVIOUS_SECONDS}))", "+ 3))"),
        )
        done = run(command, (), {"HOSTNAME": "ring-1"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == f"waiting for {previous.split('/')[0]} to serve CQL (it has joined the ring) before joining"
    )
    assert lines[-1].startswith("cassandra -f -Dcassandra.config=")
    assert ("still not serving: joining anyway" in done.stdout) is not listening
    for hostname in ("ring-0", "ring-1"):  # the seed, or a restored member: never waits
        tokens = tmp_path / "data" / cassandra.RING_TOKENS_FILE
        tokens.write_text("1,2" if hostname == "ring-1" else "")
        done = run(command, (), {"HOSTNAME": hostname})
        assert done.returncode == 0 and "waiting" not in done.stdout


def test_member_0_replacing_its_dead_self_takes_member_1_as_its_seed(tmp_path: Path) -> None:
    """A seed never bootstraps and a replacement must, so member 0 on an empty volume with a replace key
    seeds from member 1 (and does not wait for anyone); once it has bootstrapped it is the seed again,
    key or not. Member 2 replacing keeps member 0 as its seed."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "replace-address.ring-0").write_text("10.85.0.3")
    (tmp_path / "etc" / "replace-address.ring-2").write_text("10.85.0.9")
    command = _cassandra_script(tmp_path)
    rendered = tmp_path / "run" / "cassandra.yaml"
    seeds = "  - seeds: 'ring-{}.ring-headless.ns.svc.cluster.local'\n"
    for hostname, seed, address in (("ring-0", 1, "10.85.0.3"), ("ring-2", 0, "10.85.0.9")):
        done = run(command, (), {"HOSTNAME": hostname})
        assert (done.returncode, done.stdout) == (
            0,
            f"cassandra -f -Dcassandra.config=file://{rendered}"
            f" -Dcassandra.replace_address_first_boot={address}\n",
        ), done.stderr
        assert seeds.format(seed) in rendered.read_text()
    (tmp_path / "data" / "data" / "system").mkdir(parents=True)  # bootstrapped: a restart
    done = run(command, (), {"HOSTNAME": "ring-0"})
    assert done.returncode == 0, done.stderr
    assert seeds.format(0) in rendered.read_text()


def test_the_ring_delay_parameter_is_a_jvm_property_not_a_cassandra_yaml_setting(tmp_path: Path) -> None:
    """spec.parameters.ring_delay is rendered like any parameter, then the start script takes its line out
    of the file Cassandra reads (which would refuse an unknown setting) and passes it as
    -Dcassandra.ring_delay_ms; a replacement's flag still comes after it."""
    (tmp_path / "data" / "data" / "system").mkdir(parents=True)
    parameters = {"ring_delay": "5000", "slow_query_log_timeout": "20"}
    assert "\nring_delay: 5000\n" in REGISTRY[Engine.CASSANDRA].render_config(parameters)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "replace-address.ring-2").write_text("10.85.0.9")
    command = _cassandra_script(tmp_path, parameters=parameters)
    done = run(command, (), {"HOSTNAME": "ring-2"})
    assert (done.returncode, done.stdout) == (
        0,
        f"cassandra -f -Dcassandra.config=file://{tmp_path}/run/cassandra.yaml"
        " -Dcassandra.ring_delay_ms=5000 -Dcassandra.replace_address_first_boot=10.85.0.9\n",
    ), done.stderr
    rendered = (tmp_path / "run" / "cassandra.yaml").read_text()
    assert "ring_delay" not in rendered and "slow_query_log_timeout: 20ms\n" in rendered
    assert REGISTRY[Engine.CASSANDRA].validate_parameters({"ring_delay": "500"}) == [
        "parameter ring_delay=500 for cassandra: expected an integer between 1000 and 300000"
    ]
