"""The clustering daemon in the REAL operator process, on the local cluster.

1. kwok pods (no engine, no agent): the loop runs, says why it waits (Bootstrap, "waiting for
   members"), invents no primary, and the operator survives.
2. Three REAL MariaDB servers and three REAL agents on the host stand behind the fake pods
   (KUBETROVE_AGENT_ENDPOINTS / KUBETROVE_ENGINE_ENDPOINTS): bootstrap writes status.primary and
   labels the pods; SIGKILL of the primary's mariadbd -> failover: status.primary moves, the labels
   follow, a FailoverSucceeded Event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from kubetrove.agent.app import make_app
from kubetrove.agent.engines.registry import make_driver
from kubetrove.render.names import AGENT_TOKEN_KEY, LABEL_ROLE, ChildNames
from tests.integration.cluster_engines import MariaDBEngine
from tests.integration.servers._proc import free_port
from tests.integration.servers.mariadb import MariaDBServer

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import Operator, apply_cr, get_cr, poll

ROOT_PASSWORD = "root-Secret-1"
TOKEN = "agent-token-e2e"


def cluster_body(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubetrove.io/v1alpha1",
        "kind": "DatabaseCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "datastore": {"type": "mariadb", "version": "10.11"},
            "replicas": 3,
            "storage": {"size": "1Gi"},
            "failover": {"automatic": True, "detectionSeconds": 2},
        },
    }


def status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict((get_cr(api, "DatabaseCluster", namespace, name) or {}).get("status") or {})


def replication(st: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in st.get("conditions") or [] if c["type"] == "Replication"), {})


def roles(api: client.ApiClient, namespace: str, pods: list[str]) -> dict[str, str | None]:
    core = client.CoreV1Api(api)
    out = {}
    for pod in pods:
        labels = core.read_namespaced_pod(pod, namespace).metadata.labels or {}
        out[pod] = labels.get(LABEL_ROLE)
    return out


def test_loop_waits_safely_without_agents(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    body = cluster_body("nodb", namespace)
    apply_cr(local_cluster, body)
    st = poll(
        lambda: (
            (s := status(local_cluster.api, namespace, "nodb"))
            and "waiting for members" in replication(s).get("message", "")
            and s
        ),
        "the Replication condition to say it waits for members",
    )
    assert replication(st)["reason"] == "Bootstrap" and replication(st)["status"] == "False"
    assert "primary" not in st  # nothing invented
    assert [m["pod"] for m in st["members"]] == ["nodb-0", "nodb-1", "nodb-2"]
    assert not any(m["healthy"] for m in st["members"])
    assert operator.proc is not None and operator.proc.poll() is None


class Agents:
    """Real agents (the aiohttp app) for real servers, served from a thread with its own event loop."""

    def __init__(self, servers: dict[str, MariaDBServer], token: str) -> None:
        self.servers, self.token = servers, token
        self.ports = {pod: free_port() for pod in servers}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agents", daemon=True)
        self._runners: list[web.AppRunner] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        for runner in self._runners:
            self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _start(self) -> None:
        for pod, server in self.servers.items():
            runner = web.AppRunner(make_app(make_driver("mariadb", server.engine_config()), self.token))
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", self.ports[pod]).start()

    def __enter__(self) -> Agents:
        self._thread.start()
        assert self._ready.wait(60), "agents did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(60)


def secrets(namespace: str, name: str) -> list[dict[str, Any]]:
    """The cluster's two Secrets, written before the cluster: the operator keeps existing values."""
    names = ChildNames(name)

    def secret(secret_name: str, data: dict[str, str]) -> dict[str, Any]:
        enc = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        meta = {"name": secret_name, "namespace": namespace}
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": enc}

    return [
        secret(names.credentials_secret, {"root-password": ROOT_PASSWORD}),
        secret(names.agent_token_secret, {AGENT_TOKEN_KEY: TOKEN}),
    ]


@pytest.fixture
def real_mariadb(tmp_path: Path) -> Iterator[MariaDBEngine]:
    engine = MariaDBEngine(tmp_path)
    try:
        yield engine
    finally:
        engine.stop()


def grant_replication_account(server: MariaDBServer) -> None:
    """The operator replicates as the admin account (root + the Secret's password): create it over TCP."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")  # local set-up, on every member
            cur.execute("CREATE OR REPLACE USER root@'127.0.0.1' IDENTIFIED BY %s", (ROOT_PASSWORD,))
            cur.execute("GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION")
    finally:
        conn.close()


def test_bootstrap_and_failover_on_real_mariadb(
    local_cluster: LocalCluster,
    operator: Operator,
    namespace: str,
    real_mariadb: MariaDBEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "ha"
    pods = [f"{name}-{i}" for i in range(3)]
    servers = {pod: s for pod, s in real_mariadb.start(pods).items() if isinstance(s, MariaDBServer)}
    assert len(servers) == 3
    for server in servers.values():
        grant_replication_account(server)
    api = local_cluster.api
    with Agents(servers, TOKEN) as agents:
        key = {pod: f"{namespace}/{pod}" for pod in pods}
        agent_urls = {key[p]: f"http://127.0.0.1:{agents.ports[p]}" for p in pods}
        monkeypatch.setenv("KUBETROVE_AGENT_ENDPOINTS", json.dumps(agent_urls))
        monkeypatch.setenv(
            "KUBETROVE_ENGINE_ENDPOINTS", json.dumps({key[p]: f"127.0.0.1:{servers[p].port}" for p in pods})
        )
        operator.stop()
        operator.start()
        try:
            for manifest in secrets(namespace, name):
                client.CoreV1Api(api).create_namespaced_secret(namespace, manifest)
            apply_cr(local_cluster, cluster_body(name, namespace))
            _bootstrap_then_failover(api, namespace, name, pods, servers, operator)
        finally:
            monkeypatch.delenv("KUBETROVE_AGENT_ENDPOINTS")
            monkeypatch.delenv("KUBETROVE_ENGINE_ENDPOINTS")
            operator.stop()
            operator.start()  # the session's operator again, without the host endpoints


def _bootstrap_then_failover(
    api: client.ApiClient,
    namespace: str,
    name: str,
    pods: list[str],
    servers: dict[str, MariaDBServer],
    operator: Operator,
) -> None:
    def healthy() -> dict[str, Any] | None:
        st = status(api, namespace, name)
        return st if replication(st).get("reason") == "Healthy" and st.get("primary") else None

    try:
        st = poll(healthy, "bootstrap: Healthy with a primary", 120)
        first = st["primary"]
        assert first in pods and {m["pod"] for m in st["members"]} == set(pods)
        assert {m["pod"]: m["role"] for m in st["members"]}[first] == "primary"
        want = {p: "primary" if p == first else "replica" for p in pods}
        poll(lambda: roles(api, namespace, pods) == want, f"labels {want}", 60)

        os.kill(servers[first].proc.pid, signal.SIGKILL)  # the primary's engine dies; its agent answers 503
        servers[first].proc.wait(30)
        st = poll(lambda: (s := status(api, namespace, name)).get("primary") not in (None, first) and s,
                  "a new primary in status", 120)  # fmt: skip
        second = st["primary"]
        want = {p: "primary" if p == second else "replica" for p in pods}
        poll(lambda: roles(api, namespace, pods)[second] == "primary", f"{second} labelled primary", 60)
        assert roles(api, namespace, pods) == want  # the dead one keeps "replica": no longer in rw

        def reasons() -> set[tuple[str, str]]:
            # Raw JSON: kopf's own (core/v1) Events have no eventTime, which the typed model refuses.
            raw = client.EventsV1Api(api).list_namespaced_event(namespace, _preload_content=False)
            items = json.loads(raw.data)["items"]
            return {(e.get("reason", ""), e.get("regarding", {}).get("name", "")) for e in items}

        poll(lambda: ("FailoverSucceeded", name) in reasons(), "a FailoverSucceeded Event", 30)
        assert ("PrimaryElected", name) in reasons()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {status(api, namespace, name)}\noperator log tail:\n"
                             f"{operator.log()[-4000:]}") from None  # fmt: skip
