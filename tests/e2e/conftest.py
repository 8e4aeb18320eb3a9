"""e2e tier fixtures: the project's own local Kubernetes (hack/localcluster), never anyone else's cluster.

The session reuses a healthy cluster from `make cluster-up` (state in $KUBETROVE_LOCALKUBE_DIR or
~/.cache/kubetrove/localkube) and leaves it running, unless KUBETROVE_E2E_OWN_CLUSTER is set (`make test`
sets it: its two e2e lanes must not share one); otherwise it starts a private one in a pytest tmp dir
and stops it at the end. If the cluster cannot start, every e2e test FAILS with the component's log tail.
Safety: the kubeconfig must be ours (context `kubetrove-local`, a 127.0.0.1 server, our CA), and KUBECONFIG
points at it for the whole session, so a client that loads the default config cannot reach another cluster.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))

import localcluster as lc

TIMEOUT = 90.0  # seconds for any eventual condition; generous for a loaded 2-core machine


@dataclass(frozen=True)
class LocalCluster:
    """A running local cluster: its layout (logs, PKI), admin kubeconfig and API client."""

    layout: lc.Layout
    kubeconfig: Path
    api: client.ApiClient

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """The pinned kubectl against this cluster; its stdout."""
        return lc.kubectl(self.layout, *args, stdin=stdin)

    def log_tails(self) -> str:
        """The last lines of every component's log (for failure messages)."""
        return log_tails(self.layout)


def log_tails(layout: lc.Layout, lines: int = 30) -> str:
    """The last lines of every component's log in layout."""
    return "\n".join(f"--- {p.name}\n{lc.procs.tail(p, lines)}" for p in sorted(layout.logs.glob("*.log")))


def ensure_local(kubeconfig: Path, layout: lc.Layout) -> None:
    """Refuse any kubeconfig that is not this project's local cluster (wrong context, host or CA)."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    if cfg.get("current-context") != lc.CONTEXT:
        raise RuntimeError(f"{kubeconfig}: context {cfg.get('current-context')!r} is not {lc.CONTEXT!r}")
    (cluster,) = [c["cluster"] for c in cfg["clusters"] if c["name"] == lc.CONTEXT]
    if not re.fullmatch(r"https://127\.0\.0\.1:\d+", cluster["server"]):
        raise RuntimeError(f"{kubeconfig}: server {cluster['server']} is not on 127.0.0.1")
    ca = base64.b64decode(cluster["certificate-authority-data"])
    if ca != (layout.pki / "ca.crt").read_bytes():
        raise RuntimeError(f"{kubeconfig}: CA is not the local cluster's ({layout.pki / 'ca.crt'})")


def _start_or_reuse(tmp: Path) -> tuple[lc.Layout, bool]:
    """(layout, started_here): the shared healthy cluster, or a private one started in tmp."""
    shared = lc.Layout(lc.default_state_dir())
    # make test's lanes are two sessions at once: each must have a cluster of its own (hack/test-tiers.sh).
    if not os.environ.get("KUBETROVE_E2E_OWN_CLUSTER") and lc.healthy(shared):
        return shared, False
    private = lc.Layout(tmp)
    try:
        lc.up(private)
        return private, True
    except lc.ClusterError as exc:  # its message carries the failing component's log tail
        why = str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        why = f"{exc!r}\n{log_tails(private)}"
    pytest.fail(f"the local cluster did not start: {why}", pytrace=False)


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The running local cluster (started for this session unless one is already up)."""
    layout, started = _start_or_reuse(tmp_path_factory.mktemp("localkube"))
    try:
        ensure_local(layout.kubeconfig, layout)
        api = config.new_client_from_config(
            config_file=str(layout.kubeconfig), context=lc.CONTEXT, persist_config=False
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KUBECONFIG", str(layout.kubeconfig))
            yield LocalCluster(layout=layout, kubeconfig=layout.kubeconfig, api=api)
        api.close()
    finally:
        if started:
            state = layout.read_state()
            if state:  # peak memory of the control plane, for docs/development.md
                rss = lc.peak_rss_kib(state)
                print(f"\nlocalkube peak RSS (VmHWM) MiB: { {k: v // 1024 for k, v in rss.items()} }"
                      f" total {sum(rss.values()) // 1024}")  # fmt: skip
            lc.down(layout)


@pytest.fixture
def api_client(local_cluster: LocalCluster) -> client.ApiClient:
    """A kubernetes ApiClient bound to the local cluster."""
    return local_cluster.api


@pytest.fixture
def kubeconfig(local_cluster: LocalCluster) -> Path:
    """Path of the local cluster's admin kubeconfig."""
    return local_cluster.kubeconfig


def _dns_label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")


# Every namespace this pytest session creates starts with SESSION_PREFIX, and the session's operator
# watches only those (KUBETROVE_NAMESPACES is a kopf glob), so two sessions sharing one cluster (two
# engineers, or a kept `make cluster-up` cluster) never reconcile each other's resources.
SESSION_PREFIX = f"s{uuid.uuid4().hex[:5]}-"
SESSION_NAMESPACES = f"{SESSION_PREFIX}*"


def session_namespace(name: str) -> str:
    """`name` as a namespace of this session (at most 63 characters, a DNS label)."""
    return f"{SESSION_PREFIX}{name}"[:63].rstrip("-")


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test (its `default` ServiceAccount exists), deleted afterwards."""
    core = client.CoreV1Api(api_client)
    name = session_namespace(f"e2e-{_dns_label(request.node.name)}-{uuid.uuid4().hex[:6]}")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # Pods are rejected until the serviceaccount controller has created `default`.
    wait_until(lambda: bool(core.list_namespaced_service_account(name).items), "default ServiceAccount")
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def wait_until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll check() until it returns something truthy (returned); fail naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """wait_until as a fixture: eventually(check, what, timeout=90) polls check() until truthy."""
    return wait_until
