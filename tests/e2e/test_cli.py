"""``kubectl trove`` against the local cluster, as a user runs it: through kubectl's plugin discovery,
with a kubeconfig, as the cluster admin and as a ServiceAccount whose RBAC allows only reading.

kwok's pods run nothing, so a database here reaches Ready with endpoints and Secrets but no engine:
what is checked is what the CLI reads and writes through the API server, and how it fails.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from localcluster.layout import Binaries

from kubetrove.render.names import ChildNames

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import ROOT, Operator, get_cr, poll

PLUGIN = f"#!{sys.executable}\nimport sys\nfrom kubetrove.cli.main import main\nsys.exit(main())\n"


@pytest.fixture
def trove(tmp_path: Path, local_cluster: LocalCluster, namespace: str) -> Any:
    """Run ``kubectl trove ARGS`` (kubectl finds ``kubectl-trove`` on PATH, the script pip writes)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl-trove").write_text(PLUGIN)
    (bindir / "kubectl-trove").chmod(0o755)
    kubectl = str(Binaries.locate().kubectl)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT / "operator")}

    def run(
        *args: str, kubeconfig: Path | None = None, ns: str | None = namespace
    ) -> subprocess.CompletedProcess[str]:
        argv = [kubectl, "trove", "--kubeconfig", str(kubeconfig or local_cluster.kubeconfig)]
        argv += ["-n", ns] if ns else []
        return subprocess.run(
            [*argv, *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    return run


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_create_list_get_credentials_connect_backup(
    trove: Any, local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    version = json.loads(ok(trove("catalog", "-o", "json")))
    mariadb = next(r["version"] for r in version if r["engine"] == "mariadb" and r["default"])

    # --dry-run prints what GitOps users commit, and creates nothing.
    create = ("create", "shop", "--engine", "mariadb", "--version", mariadb)
    dry = yaml.safe_load(ok(trove(*create, "--replicas", "3", "--user", "app:orders", "--dry-run")))
    assert dry["kind"] == "DatabaseCluster" and dry["metadata"]["namespace"] == namespace
    assert get_cr(local_cluster.api, "DatabaseCluster", namespace, "shop") is None

    out = ok(trove("create", "shop", "--engine", "mariadb", "--version", mariadb, "--storage", "2Gi",
                   "--user", "app:orders:readWrite"))  # fmt: skip
    assert out.strip() == f"DatabaseInstance/shop created in {namespace}"
    poll(
        lambda: (
            (get_cr(local_cluster.api, "DatabaseInstance", namespace, "shop") or {})
            .get("status", {})
            .get("phase")
            == "Ready"
        ),
        "shop Ready",
    )

    table = ok(trove("list"))
    header, row = table.splitlines()[0].split(), table.splitlines()[1].split()
    assert header[:6] == ["NAME", "KIND", "ENGINE", "VERSION", "PHASE", "READY"]
    assert row[:6] == ["shop", "DatabaseInstance", "mariadb", mariadb, "Ready", "1/1"]
    rows = json.loads(ok(trove("list", "-o", "json")))
    assert [r["name"] for r in rows] == ["shop"]
    assert "shop" in ok(trove("list", "-A", ns=None))

    detail = yaml.safe_load(ok(trove("get", "shop", "-o", "yaml")))
    assert detail["endpoints"]["readWrite"].startswith(f"{ChildNames('shop').rw_service}.")
    assert {c["type"] for c in detail["conditions"]} >= {"Ready"}

    admin = json.loads(ok(trove("credentials", "shop", "-o", "json")))
    secret = client.CoreV1Api(local_cluster.api).read_namespaced_secret(
        ChildNames("shop").credentials_secret, namespace
    )
    assert admin["user"] == "root"
    assert admin["password"] == base64.b64decode(secret.data["root-password"]).decode()
    app = poll(
        lambda: (r := trove("credentials", "shop", "--user", "app", "-o", "json")).returncode == 0 and r,
        "app's Secret",
    )
    assert json.loads(app.stdout)["user"] == "app" and json.loads(app.stdout)["password"]

    uri = ok(trove("connect", "shop", "--user", "app", "--database", "orders")).strip()
    assert uri == f"mysql://app@{detail['endpoints']['readWrite']}/orders"  # never the password

    made = ok(trove("backup", "shop", "--backup-name", "shop-now"))
    assert made.strip().startswith("DatabaseBackup/shop-now ")
    backup = client.CustomObjectsApi(local_cluster.api).get_namespaced_custom_object(
        "kubetrove.io", "v1alpha1", namespace, "databasebackups", "shop-now"
    )
    assert backup["spec"]["source"] == {"kind": "DatabaseInstance", "name": "shop"}


def test_errors_are_one_line_and_non_zero(trove: Any, operator: Operator, namespace: str) -> None:
    for args, want in [
        (("get", "nothing"), f'no DatabaseInstance or DatabaseCluster "nothing" in namespace "{namespace}"'),
        (("restore", "nothing", "--to", "x"), f'no DatabaseBackup "nothing" in namespace "{namespace}"'),
        (("switchover", "nothing", "--to", "nothing-1"), "no DatabaseInstance or DatabaseCluster"),
        (("create", "x", "--engine", "mariadb", "--version", "0.1"), "mariadb 0.1 is not in the catalog"),
        (("--context", "nope", "list"), "context 'nope' not found"),
    ]:
        res = trove(*args)
        assert res.returncode == 1, (args, res.stdout)
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and want in res.stderr, (
            res.stderr
        )
    bad = trove("create", "x", "--engine", "oracle", "--version", "1")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    # The server's own refusal comes through in its words (an invalid DNS name).
    res = trove("create", "Not_A_Name", "--engine", "postgresql", "--version", _default("postgresql", trove))
    assert res.returncode == 1 and "Not_A_Name" in res.stderr and "Traceback" not in res.stderr


def _default(engine: str, trove: Any) -> str:
    return next(
        r["version"]
        for r in json.loads(ok(trove("catalog", "-o", "json")))
        if r["engine"] == engine and r["default"]
    )


def test_a_user_without_rights_is_refused_not_shown(
    trove: Any, local_cluster: LocalCluster, operator: Operator, namespace: str, tmp_path: Path
) -> None:
    """A ServiceAccount that may only read the custom resources: list works; Secrets and writes are 403s."""
    core, rbac = client.CoreV1Api(local_cluster.api), client.RbacAuthorizationV1Api(local_cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "viewer"}})
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "db-viewer"},
        "rules": [{"apiGroups": ["kubetrove.io"], "verbs": ["get", "list"],
                   "resources": ["databaseinstances", "databaseclusters", "databasebackups"]}],
    })  # fmt: skip
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "db-viewer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "db-viewer"},
        "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
    })  # fmt: skip
    token = core.create_namespaced_service_account_token(
        "viewer", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    admin = yaml.safe_load(local_cluster.kubeconfig.read_text())
    viewer = tmp_path / "viewer.kubeconfig"
    viewer.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "viewer",
        "clusters": admin["clusters"],
        "users": [{"name": "viewer", "user": {"token": token}}],
        "contexts": [{"name": "viewer", "context": {"cluster": admin["clusters"][0]["name"], "user": "viewer",
                                                     "namespace": namespace}}],
    }))  # fmt: skip
    ok(trove("create", "ro", "--engine", "postgresql", "--version", _default("postgresql", trove)))

    assert "ro" in ok(trove("list", kubeconfig=viewer, ns=None))  # the context's namespace
    pg = _default("postgresql", trove)
    for args in (
        ("credentials", "ro"),
        ("create", "x", "--engine", "postgresql", "--version", pg),
        ("backup", "ro"),
        ("logs", "ro"),  # pods/log: the engine's log is read as the user, never with the operator's rights
    ):
        res = trove(*args, kubeconfig=viewer, ns=None)
        assert res.returncode == 1 and res.stderr.startswith("error: forbidden: "), (args, res.stderr)
        assert "password" not in res.stdout
    res = trove("list", "-A", kubeconfig=viewer, ns=None)  # no cluster-wide list right
    assert res.returncode == 1 and "forbidden" in res.stderr
