"""Real-node fixtures: the session's local cluster gets the real node (hack/realnode), and each test a
namespace whose pods tolerate the node's taint, so they run for real (containerd + runc) there.

The node is stopped at the end only when this session started the cluster (a private one); a developer's
`make cluster-up` cluster keeps it, like the cluster itself. If it cannot start, every test FAILS with
the node's log tails (never skips).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hack"))

import localcluster as lc
import realnode

from kubetrove.agent.protocol import ErrorLogReply, SlowLogReply
from tests.integration.servers.minio import MinioServer, start_minio

from ..conftest import LocalCluster, _dns_label, log_tails, session_namespace, wait_until
from ..operator_support import LEASE_NAMESPACE
from .agent_tls_checks import operator_like_client


@pytest.fixture(scope="session")
def real_node(local_cluster: LocalCluster) -> Iterator[str]:
    """The real node's name, once it is Ready in the session's cluster."""
    started = realnode.healthy(realnode.layout_for(local_cluster.layout)) is None
    try:
        realnode.up(local_cluster.layout)
    except (lc.ClusterError, OSError) as exc:
        realnode.down(local_cluster.layout)
        pytest.fail(f"the real node did not start: {exc}\n{log_tails(local_cluster.layout)}", pytrace=False)
    yield realnode.NODE_NAME
    if started and local_cluster.layout.root != lc.default_state_dir():
        realnode.down(local_cluster.layout)


def namespace_gone(cluster: LocalCluster, namespace: str) -> bool:
    """Whether ``namespace`` is gone (its deletion finished: the operator released every finalizer)."""
    try:
        client.CoreV1Api(cluster.api).read_namespace(namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


@contextmanager
def real_namespace_named(api: client.ApiClient, name: str, session: bool = True) -> Iterator[str]:
    """Create namespace `name` (under this session's prefix, so the session's operator handles it; with
    ``session=False`` outside it, for an operator of the test's own) whose pods all run on the real node;
    delete it (and its pods) afterwards."""
    name = session_namespace(name) if session else name
    core = client.CoreV1Api(api)
    meta = client.V1ObjectMeta(name=name, annotations=dict(realnode.REAL_NODE_ANNOTATIONS))
    core.create_namespace(client.V1Namespace(metadata=meta))
    wait_until(lambda: bool(core.list_namespaced_service_account(name).items), "default ServiceAccount")
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def real_namespace(
    request: pytest.FixtureRequest, api_client: client.ApiClient, real_node: str
) -> Iterator[str]:
    """A fresh namespace per test whose pods all run on the real node."""
    with real_namespace_named(
        api_client, f"real-{_dns_label(request.node.name)}-{uuid.uuid4().hex[:6]}"
    ) as ns:
        yield ns


def settled(status: dict[str, Any]) -> bool:
    """Ready, and the spec's users and databases applied (UsersReady True): a client may log in now."""
    users = [c for c in status.get("conditions", []) if c["type"] == "UsersReady"]
    return status.get("phase") == "Ready" and bool(users) and all(c["status"] == "True" for c in users)


APP_USER, APP_PASSWORD, APP_SECRET = "app", "app-Secret-42", "app-password"


def real_resource(
    kind: str, name: str, namespace: str, engine: str, version: str, database: str
) -> dict[str, Any]:
    """A small DatabaseInstance/DatabaseCluster on the real node's StorageClass, with one database and
    the app user (its password in the Secret APP_SECRET, which `app_secret` creates)."""
    return {
        "apiVersion": "kubetrove.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "datastore": {"type": engine, "version": version},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
            "storage": {"size": "1Gi", "storageClassName": realnode.STORAGE_CLASS},
            "databases": [{"name": database}],
            "users": [{"name": APP_USER, "passwordSecretRef": {"name": APP_SECRET, "key": "password"},
                       "grants": [{"database": database, "privileges": ["readWrite"]}]}],
            "deletionPolicy": {"volumes": "Delete"},
        },
    }  # fmt: skip


def app_secret(api: client.ApiClient, namespace: str) -> None:
    """The Secret holding the app user's password."""
    meta = client.V1ObjectMeta(name=APP_SECRET)
    client.CoreV1Api(api).create_namespaced_secret(
        namespace, client.V1Secret(metadata=meta, string_data={"password": APP_PASSWORD})
    )


@pytest.fixture(scope="module")
def bridge_minio() -> Iterator[MinioServer]:
    """A real MinIO on the bridge gateway: pods reach it at http://10.85.0.1:<port>, the host too."""
    server = start_minio(host=realnode.BRIDGE_IP)
    yield server
    server.stop()


def s3_storage(api: client.ApiClient, namespace: str, minio: MinioServer, secret: str) -> dict[str, Any]:
    """Create the credentials Secret ``secret`` for ``minio``; the ``spec.backup.storage`` naming it."""
    creds = {"AWS_ACCESS_KEY_ID": minio.access_key, "AWS_SECRET_ACCESS_KEY": minio.secret_key}
    client.CoreV1Api(api).create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=secret), string_data=creds)
    )
    s3 = {"bucket": minio.bucket, "prefix": f"{namespace}/", "endpoint": minio.endpoint}
    return {"s3": {**s3, "credentialsSecretRef": secret}}


ENGINE_PORTS = {"mariadb": 3306, "postgresql": 5432}


def connect_app(engine: str, host: str, database: str) -> Any:
    """The spec user's autocommit connection through a Service; retried while refused (it follows Ready)."""
    port = ENGINE_PORTS[engine]

    def attempt() -> Any:
        try:
            if engine == "mariadb":
                return pymysql.connect(host=host, port=port, user=APP_USER, password=APP_PASSWORD,
                                       database=database, connect_timeout=5, autocommit=True)  # fmt: skip
            return psycopg.connect(host=host, port=port, user=APP_USER, password=APP_PASSWORD,
                                   dbname=database, connect_timeout=5, autocommit=True)  # fmt: skip
        except (pymysql.err.OperationalError, psycopg.OperationalError) as exc:
            if "refused" in str(exc).lower() or "reset" in str(exc).lower():
                return None
            raise

    return wait_until(attempt, f"{engine} at {host}:{port} to accept the app user", timeout=60)


def agent_logs(
    api: client.ApiClient, namespace: str, owner: str, pod: Any
) -> tuple[SlowLogReply, ErrorLogReply]:
    """GET /v1/logs/slow and /v1/logs/error (the newest 1000 each) from ``pod``'s agent, as the operator
    calls it (its token; over TLS with a client certificate of the installation's CA)."""

    async def read() -> tuple[SlowLogReply, ErrorLogReply]:
        async with operator_like_client(api, LEASE_NAMESPACE, namespace, owner, pod) as agent:
            return await agent.slow_log(tail=1000), await agent.error_log(tail=1000)

    return asyncio.run(read())


def container_report(api: client.ApiClient, namespace: str, pods: list[Any], tail: int = 25) -> list[str]:
    """Per pod, each (init) container's state and restarts, then the last ``tail`` lines of its log."""
    core, lines = client.CoreV1Api(api), []
    for pod in pods:
        st = pod.status
        for c in (st.init_container_statuses or []) + (st.container_statuses or []):
            lines.append(f"{pod.metadata.name}/{c.name}: state={c.state} restarts={c.restart_count}")
            try:
                log = core.read_namespaced_pod_log(
                    pod.metadata.name, namespace, container=c.name, tail_lines=tail
                )
            except ApiException as exc:
                log = f"(no log: {exc.reason})"
            lines.append(log)
    return lines
