"""`make demo` itself, as the README tells a newcomer to run it: hack/demo.sh end to end.

The script brings up (here: reuses) the local cluster and its real node, builds and pushes the images,
`helm install`s the chart (the operator in a pod, namespaced mode), applies a 3-member MariaDB
DatabaseCluster, waits for Ready with a primary and its users, writes and reads a row through the rw
Service with pymysql, and removes its database, namespace and release on exit. The test runs it on this
session's cluster (``KUBETROVE_LOCALKUBE_DIR``) with namespaces and a release of its own, outside the
session's prefix; the demo's operator watches only its own namespace, and the session's operator, which
is cluster-wide, is stopped while the demo runs (``session_operator_paused``), so only the demo's operator
reconciles the demo's resources.

What must hold: the script exits 0, says it wrote and read back the row, and leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from kubernetes import client

from ..conftest import LocalCluster, wait_until
from ..operator_support import session_operator_paused
from .conftest import namespace_gone

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT = 1200  # the images are built already (the real node's start); the 3 MariaDB pods start in turn


def test_make_demo_runs_end_to_end(local_cluster: LocalCluster, real_node: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    namespace, operator_namespace = f"demo-{suffix}", f"demo-op-{suffix}"
    env = {
        **os.environ,
        "KUBETROVE_LOCALKUBE_DIR": str(local_cluster.layout.root),
        "DEMO_NAMESPACE": namespace,
        "DEMO_OPERATOR_NAMESPACE": operator_namespace,
        "DEMO_RELEASE": f"demo-{suffix}",
    }
    core = client.CoreV1Api(local_cluster.api)
    with session_operator_paused():
        _run_demo(local_cluster, core, env, namespace, operator_namespace)


def _run_demo(
    local_cluster: LocalCluster,
    core: client.CoreV1Api,
    env: dict[str, str],
    namespace: str,
    operator_namespace: str,
) -> None:
    try:
        done = subprocess.run(
            ["bash", str(ROOT / "hack" / "demo.sh")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"make demo failed ({done.returncode}):\n{out[-6000:]}"
        assert "wrote and read back: id=" in out and "hello from make demo" in out, out[-4000:]
        # Its exit removed the database and its namespace (the operator released the finalizer first).
        wait_until(
            lambda: namespace_gone(local_cluster, namespace),
            timeout=300,
            what=f"the demo's namespace {namespace} gone after its exit",
        )
    finally:
        for ns in (namespace, operator_namespace):
            try:
                core.delete_namespace(ns)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
