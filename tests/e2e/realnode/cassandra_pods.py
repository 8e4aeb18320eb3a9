"""Helpers of the Cassandra pods module (test_cassandra_pods.py): CQL sessions from the host to Services
and pods, the resource's status and members, the engine JVM of a pod seen from the host (the real node's
containers are the host's processes: its pid, its RSS, nodetool run inside its namespaces), the pod IPs a
``QuorumWriter`` (tests/integration/ring_harness.py) writes through, and a watch of the members' states.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import SimpleStatement
from kubernetes import client

from ..conftest import LocalCluster
from ..operator_support import get_cr
from .conftest import APP_PASSWORD, APP_USER, container_report

PORT = 9042
JVM_MAIN = "CassandraDaemon"


def status_of(cluster: LocalCluster, kind: str, namespace: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, kind, namespace, name) or {}).get("status")) or {}


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == kind), {})


def ring_states(status: dict[str, Any]) -> dict[str, str]:
    """pod -> ringState, from ``status.members``."""
    return {m["pod"]: m.get("ringState", "") for m in status.get("members") or []}


def session(
    hosts: str | list[str], user: str = APP_USER, password: str = APP_PASSWORD
) -> tuple[Cluster, Session]:
    """A session to ``hosts`` only (a Service's ClusterIP, or pod IPs): every request goes there, so what
    answers is whatever node the Service routes to."""
    hosts = [hosts] if isinstance(hosts, str) else hosts
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(hosts), request_timeout=30)
    cluster = Cluster(
        hosts,
        port=PORT,
        auth_provider=PlainTextAuthProvider(user, password),
        protocol_version=5,
        connect_timeout=10,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        return cluster, cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise


def rows_at(
    hosts: str | list[str], query: str, level: int, user: str = APP_USER, password: str = APP_PASSWORD
) -> list[Any]:
    """Every row of ``query`` at consistency ``level``."""
    cluster, s = session(hosts, user, password)
    try:
        return list(s.execute(SimpleStatement(query, consistency_level=level, fetch_size=5000), timeout=120))
    finally:
        cluster.shutdown()


def service_ip(cluster: LocalCluster, namespace: str, service: str) -> str:
    return str(client.CoreV1Api(cluster.api).read_namespaced_service(service, namespace).spec.cluster_ip)


def pods_of(cluster: LocalCluster, namespace: str, name: str) -> list[Any]:
    core = client.CoreV1Api(cluster.api)
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={name}").items
    return sorted(pods, key=lambda p: p.metadata.name)


def report(cluster: LocalCluster, namespace: str, name: str) -> str:
    """The resource's status and, per pod, container states and the last lines of each log."""
    lines = [f"status of {name}: {status_of(cluster, 'DatabaseCluster', namespace, name)}"]
    return "\n".join(lines + container_report(cluster.api, namespace, pods_of(cluster, namespace, name)))


def _host_proc(pod_uid: str, command: str) -> Path | None:
    """/proc/<pid> of the pod's process running ``command`` (its cgroup names the pod's uid)."""
    marks = (pod_uid, pod_uid.replace("-", "_"))
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or command not in (proc / "cmdline").read_text():
                continue
            if any(m in (proc / "cgroup").read_text() for m in marks):
                return proc
        except OSError:
            continue
    return None


def jvm_pid(pod_uid: str) -> int | None:
    """The host pid of the pod's Cassandra JVM, None if it runs none."""
    proc = _host_proc(pod_uid, JVM_MAIN)
    return int(proc.name) if proc is not None else None


def rss_mib(pod_uid: str) -> int | None:
    """The resident memory of the pod's Cassandra JVM, seen from the host; None if there is none."""
    proc = _host_proc(pod_uid, JVM_MAIN)
    try:
        status = (proc / "status").read_text() if proc is not None else ""
    except OSError:
        return None
    return next(
        (int(line.split()[1]) // 1024 for line in status.splitlines() if line.startswith("VmRSS:")), None
    )


def nodetool(pod_uid: str, *args: str) -> str:
    """``nodetool <args>`` of the pod's own image, run inside its engine container's mount, network and
    pid namespaces (so it reaches the node's local-only JMX on the pod's 127.0.0.1): the host is root.
    The pid namespace too: the image's java finds libjli.so through ``$ORIGIN``, which the loader takes
    from /proc/self/exe, and the container's /proc shows only its own pid namespace."""
    pid = jvm_pid(pod_uid)
    assert pid is not None, f"no Cassandra JVM in pod {pod_uid}"
    done = subprocess.run(
        ["nsenter", f"--target={pid}", "--mount", "--net", "--pid", "--root", "--wd", "--",
         "/usr/local/bin/nodetool", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"},  # the image's
    )  # fmt: skip
    assert done.returncode == 0, f"nodetool {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


@dataclass(frozen=True)
class Coordinators:
    """Sessions of the app user to these pod IPs only (what ``QuorumWriter`` writes through)."""

    hosts: list[str]

    @contextmanager
    def session(self) -> Iterator[Session]:
        cluster, s = session(self.hosts)
        try:
            yield s
        finally:
            cluster.shutdown()


@dataclass
class StateWatch:
    """Polls ``status.members`` and the pods' readiness every ``every`` seconds until stopped; keeps the
    most members not UN and the most pods not Ready seen at once, and each change of either."""

    cluster: LocalCluster
    namespace: str
    name: str
    nodes: int
    every: float = 1.0
    most_not_un: int = 0
    most_not_ready: int = 0
    seen: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> StateWatch:
        self._thread = threading.Thread(target=self._run, name="state-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def _run(self) -> None:
        started, last = time.monotonic(), ""
        while not self._stop.wait(self.every):
            try:
                states = ring_states(status_of(self.cluster, "DatabaseCluster", self.namespace, self.name))
                pods = pods_of(self.cluster, self.namespace, self.name)
            except Exception:  # an API hiccup: the next poll
                continue
            ready = {p.metadata.name for p in pods if _ready(p)}
            not_ready = sorted({f"{self.name}-{i}" for i in range(self.nodes)} - ready)
            not_un = [f"{self.name}-{i}" for i in range(self.nodes) if states.get(f"{self.name}-{i}") != "UN"]
            self.most_not_un = max(self.most_not_un, len(not_un))
            self.most_not_ready = max(self.most_not_ready, len(not_ready))
            now = f"not UN {not_un}, not Ready {not_ready}"
            if now != last:
                self.seen.append(f"{time.monotonic() - started:.0f}s: {now}")
                last = now


def _ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
