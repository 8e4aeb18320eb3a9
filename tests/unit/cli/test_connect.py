"""kubectl trove connect under spec.tls: the CA from the credentials Secret, and the engine's client
started with its TLS options and the CA in a temporary file (a fake kubectl and client record it)."""

from __future__ import annotations

import asyncio
import base64
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from kubetrove.cli import commands
from kubetrove.cli.commands import CliError, Ctx
from tests.unit.reconcile.fake_kube import FakeKube

NS = "team"
CA = "-----BEGIN CERTIFICATE-----\nMIIB-test-CA\n-----END CERTIFICATE-----\n"

# A port-forward that listens until killed, and a client that records what it was started with.
FAKE_KUBECTL = """#!{python}
import socket, sys, time
port = int(sys.argv[-1].split(":")[0])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(5)
time.sleep(60)
"""
FAKE_CLIENT = """#!{python}
import json, os, sys
flag = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--ssl-ca=")]
ca = os.environ.get("SSL_CERTFILE") or (flag[0] if flag else "")
seen = {{"argv": sys.argv[1:], "env": {{k: v for k, v in os.environ.items() if k.startswith("SSL_")}},
        "ca": open(ca).read() if ca else "", "ca_path": ca}}
open({out!r}, "w").write(json.dumps(seen))
"""


def database(engine: str, version: str, mode: str, port: int, secret: dict[str, str]) -> FakeKube:
    kube = FakeKube()
    kube.put({
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabaseInstance",
        "metadata": {"name": "db", "namespace": NS},
        "spec": {"datastore": {"type": engine, "version": version}, "tls": {"mode": mode}},
        "status": {"endpoints": {"readWrite": f"db-rw.{NS}.svc:{port}"}},
    })  # fmt: skip
    data = {k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}
    kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": NS},
              "data": data})  # fmt: skip
    return kube


def connection(kube: FakeKube) -> commands.Connection:
    return asyncio.run(commands.connection(Ctx(kube, NS), "db", None, None))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, conn: commands.Connection) -> dict[str, Any]:
    import json

    bin_dir, out = tmp_path / "bin", tmp_path / "seen.json"
    bin_dir.mkdir()
    for name, text in (("kubectl", FAKE_KUBECTL), (conn.client.program, FAKE_CLIENT)):
        (bin_dir / name).write_text(text.format(python=sys.executable, out=str(out)))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    assert commands.run_client(conn, str(bin_dir / "kubectl"), NS, free_port(), {"PATH": str(bin_dir)}) == 0
    seen: dict[str, Any] = json.loads(out.read_text())
    return seen


def test_cqlsh_gets_ssl_and_the_ca_to_verify_under_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = database("cassandra", "5.0", "required", 9042, {"superuser-password": "pw", "ca.crt": CA})
    conn = connection(kube)
    assert conn.tls_ca == CA and conn.shown()["tls"] is True
    seen = run(tmp_path, monkeypatch, conn)
    assert seen["argv"][0] == "--ssl" and seen["argv"][3:] == ["-u", "cassandra"]
    assert seen["env"]["SSL_VALIDATE"] == "true" and seen["ca"] == CA
    assert not Path(seen["ca_path"]).exists()  # the temporary CA file is gone with the client


def test_mysql_is_told_to_verify_the_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kube = database("mysql", "8.4", "optional", 3306, {"root-password": "pw", "ca.crt": CA})
    conn = connection(kube)
    seen = run(tmp_path, monkeypatch, conn)
    assert seen["argv"][0] == "--ssl-mode=VERIFY_CA" and seen["argv"][1].startswith("--ssl-ca=")
    assert seen["ca"] == CA


def test_without_tls_the_client_gets_no_tls_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kube = database("cassandra", "5.0", "disabled", 9042, {"superuser-password": "pw"})
    conn = connection(kube)
    assert conn.tls_ca == "" and conn.shown()["tls"] is False
    seen = run(tmp_path, monkeypatch, conn)
    assert "--ssl" not in seen["argv"] and seen["env"] == {} and seen["ca"] == ""


def test_tls_on_without_the_ca_in_the_secret_yet_is_one_clear_line() -> None:
    kube = database("cassandra", "5.0", "required", 9042, {"superuser-password": "pw"})
    with pytest.raises(CliError, match=r"spec.tls.mode is required but Secret db-credentials has no ca.crt"):
        connection(kube)


@pytest.mark.parametrize("engine", ["postgresql", "mysql", "mariadb", "mongodb", "cassandra"])
def test_every_engine_s_client_has_tls_options_naming_the_ca(engine: str) -> None:
    from kubetrove.datastores import registry

    client = registry.get(engine).client
    assert any("{ca}" in a for a in (*client.tls_args, *client.tls_env.values())), engine
