"""Fixtures and helpers shared by tests/e2e/test_operator_*.py: the operator as a real process.

The operator runs as a subprocess (``python -m kubetrove.handlers.main``) with the local cluster's
kubeconfig, exactly as ``make run`` starts it, so a test can stop it, restart it, or start a second
instance beside it. One operator process is shared by the whole session (2 cores: starting one per
test would dominate the run time); tests that stop it start it again before they return.
Each session uses its own Lease name, so a developer's `make run` on the same cluster never blocks it.

Import the fixtures into a test module with ``from .operator_support import *``.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import SESSION_PREFIX, LocalCluster, wait_until

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"
GROUP, VERSION = "kubetrove.io", "v1alpha1"
PLURALS = {"DatabaseInstance": "databaseinstances", "DatabaseCluster": "databaseclusters"}
LEASE_NAMESPACE = "default"

__all__ = [
    "EXAMPLES",
    "Operator",
    "apply_cr",
    "example",
    "get_cr",
    "operator",
    "operator_crds",
    "wait_phase",
]


class Operator:
    """One operator process (start, stop, read its log)."""

    def __init__(self, kubeconfig: Path, log_path: Path, lease_name: str) -> None:
        self.kubeconfig, self.log_path, self.lease_name = kubeconfig, log_path, lease_name
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self, wait_for_lease: bool = True) -> None:
        """Start the process; by default return once it holds the Lease (it handles nothing before)."""
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "operator"),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBETROVE_LEASE_NAME": self.lease_name,
            # Cluster-wide, not KUBETROVE_NAMESPACES=<session prefix>*: with a glob, kopf discovers namespaces
            # and drops one from its watch as soon as it is marked for deletion with no blocking condition
            # yet, so the finalizers of its resources were never removed (two full runs, stuck teardown).
            "KUBETROVE_LEASE_NAMESPACE": LEASE_NAMESPACE,
            "KUBETROVE_STATUS_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",  # the tests read its log as it happens
            "KUBETROVE_METRICS_PORT": "0",  # two instances on one host must not fight over a port
            "KUBETROVE_HEALTH_PORT": "0",  # the same for the liveness endpoint
        }
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kubetrove.handlers.main"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if wait_for_lease:
            wait_until(lambda: "acquired by" in self.log() or self.proc.poll() is not None, "the Lease")
            assert self.proc.poll() is None, f"operator exited:\n{self.log()}"

    def stop(self) -> None:
        """SIGTERM (kopf stops gracefully and the cleanup handler releases the Lease), then wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def stacks(self) -> str:
        """Where the running process's asyncio tasks and threads wait (SIGUSR2), from its log."""
        if self.proc is None or self.proc.poll() is not None:
            return "(the operator is not running)"
        self.proc.send_signal(signal.SIGUSR2)
        time.sleep(3)
        text = self.log()
        return text[text.rfind("stacks: ") :][:60000]

    def log(self) -> str:
        """What this process (since its last start) wrote."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")


@pytest.fixture(scope="session")
def operator_crds(local_cluster: LocalCluster) -> None:
    """crds/*.yaml applied (server-side, idempotent) and Established."""
    local_cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    for f in sorted(CRDS.glob("*.yaml")):
        name = yaml.safe_load(f.read_text())["metadata"]["name"]
        local_cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")


# Each test module that star-imports this one gets its own copy of the fixture (pytest registers
# fixtures per module), so the process itself lives here, shared and reference-counted.
_SHARED: dict[str, Any] = {"operator": None, "users": 0}


@contextmanager
def session_operator_paused() -> Iterator[None]:
    """The session's operator stopped (if it runs) for the block, and started again after: for a test that
    runs an operator of its own on this session's cluster (make demo's, in a pod). The session's operator
    is cluster-wide, so both would reconcile the same resources, each with its own agent CA: seen in make
    test, the demo operator's Users phase failed TLS against agents the session's operator had certified,
    and its UsersReady stayed False."""
    op: Operator | None = _SHARED["operator"]
    running = op is not None and op.proc is not None and op.proc.poll() is None
    if op is not None and running:
        op.stop()
    try:
        yield
    finally:
        if op is not None and running:
            op.start()


@pytest.fixture(scope="session")
def operator(
    local_cluster: LocalCluster, operator_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """The session's operator process (holding the session's Lease)."""
    if _SHARED["operator"] is None:
        log = tmp_path_factory.mktemp("operator") / "operator.log"
        _SHARED["operator"] = Operator(local_cluster.kubeconfig, log, f"kubetrove-e2e-{uuid.uuid4().hex[:8]}")
        _SHARED["operator"].start()
    _SHARED["users"] += 1
    op: Operator = _SHARED["operator"]
    yield op
    _SHARED["users"] -= 1
    if _SHARED["users"] == 0:
        try:
            # The last tests' namespaces are being deleted: their resources carry our finalizer, so the
            # operator must see them go before it stops, or the namespaces hang in Terminating. 300 s: a
            # MySQL member's clean shutdown (InnoDB) takes tens of seconds on 2 shared cores, and the
            # finalizer waits for the pods.
            try:
                wait_until(
                    lambda: not _terminating(local_cluster.api), "resources with our finalizer to go", 300
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {_terminating(local_cluster.api)}\n{op.stacks()}") from None
        finally:  # stopped even then: a leaked operator would keep acting on a shared cluster's resources
            op.stop()
            _SHARED["operator"] = None
            print(f"\noperator log: {op.log_path}")


def _terminating(api: client.ApiClient) -> list[str]:
    """This session's custom resources that are, or are about to be, deleted (in a Terminating namespace);
    other sessions' are their operators' to finalize (this one does not watch them)."""
    spaces = client.CoreV1Api(api).list_namespace().items
    going = {n.metadata.name for n in spaces if n.status.phase == "Terminating"}
    objects = client.CustomObjectsApi(api)
    return [
        f"{o['metadata']['namespace']}/{o['metadata']['name']}"
        for plural in PLURALS.values()
        for o in objects.list_cluster_custom_object(GROUP, VERSION, plural)["items"]
        if o["metadata"]["namespace"].startswith(SESSION_PREFIX)
        and (o["metadata"].get("deletionTimestamp") or o["metadata"]["namespace"] in going)
    ]


def example(name: str, namespace: str) -> dict[str, Any]:
    """examples/<name>.yaml with the test's namespace."""
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    body = copy.deepcopy(body)
    body["metadata"]["namespace"] = namespace
    return body


def apply_cr(local_cluster: LocalCluster, body: dict[str, Any]) -> str:
    """kubectl apply (client-side, as a user would); raises ClusterError with the server's message."""
    return local_cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


def get_cr(api: client.ApiClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The custom resource, or None once it is gone."""
    return custom_object(api, PLURALS[kind], namespace, name) or None


def custom_object(api: client.ApiClient, plural: str, namespace: str, name: str) -> dict[str, Any]:
    """Any kubetrove custom object by its plural (backups too), or {} once it is gone."""
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return obj


def wait_phase(
    api: client.ApiClient, body: dict[str, Any], phase: str, timeout: float = 90, op: Operator | None = None
) -> dict[str, Any]:
    """Wait until the resource's status.phase is ``phase`` and its observedGeneration is current."""
    meta = body["metadata"]

    def check() -> dict[str, Any] | None:
        obj = get_cr(api, body["kind"], meta["namespace"], meta["name"])
        status = (obj or {}).get("status") or {}
        current = status.get("observedGeneration") == (obj or {}).get("metadata", {}).get("generation")
        return obj if status.get("phase") == phase and current else None

    try:
        result: dict[str, Any] = wait_until(check, f"{body['kind']} {meta['name']} {phase}", timeout)
    except AssertionError as exc:
        obj = get_cr(api, body["kind"], meta["namespace"], meta["name"])
        tail = op.log()[-3000:] if op else ""
        raise AssertionError(
            f"{exc}\nstatus: {(obj or {}).get('status')}\noperator log tail:\n{tail}"
        ) from None
    return result


def poll(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """wait_until, re-exported for the test modules."""
    return wait_until(check, what, timeout)


def settle(seconds: float) -> None:
    """Let the operator run for a while (used only to show that something does NOT happen)."""
    time.sleep(seconds)
