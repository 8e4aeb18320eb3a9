"""spec.tls ``mode: required`` on real pods: a PostgreSQL 15 and a MariaDB 10.11 DatabaseInstance.

Each becomes Ready with its users applied (the agent reaches its engine over TLS), reports TLSReady with
the certificate's expiry, and puts ``ca.crt`` and a TLS URI into its credentials Secret. From the host,
through the read-write Service's ClusterIP: a client verifying that CA and the Service's DNS name logs in
over TLS; a plaintext client is refused; a name the certificate does not hold fails verification.
(Replication under ``required`` on real pods: test_postgresql_cluster.py runs its cluster with it.)
"""

from __future__ import annotations

import base64
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from kubernetes import client

from kubetrove.render.names import ChildNames
from tests.integration.servers.tls import probe

from ..conftest import LocalCluster, wait_until
from ..operator_support import *  # noqa: F403  (fixtures)
from ..operator_support import Operator, apply_cr, get_cr
from .conftest import APP_PASSWORD, APP_USER, app_secret, real_namespace_named, real_resource, settled

DATABASE = "shop"
INSTANCES = {"pgtls": ("postgresql", "15", 5432), "mariatls": ("mariadb", "10.11", 3306)}


@pytest.fixture(scope="module")
def tls_namespace(local_cluster: LocalCluster, operator: Operator, real_node: str) -> Iterator[str]:
    """Both instances with ``tls.mode: required``, created side by side."""
    with real_namespace_named(local_cluster.api, f"real-tls-{uuid.uuid4().hex[:6]}") as ns:
        app_secret(local_cluster.api, ns)
        for name, (engine, version, _) in INSTANCES.items():
            body = real_resource("DatabaseInstance", name, ns, engine, version, DATABASE)
            body["spec"]["tls"] = {"mode": "required"}
            apply_cr(local_cluster, body)
        yield ns


def _status(cluster: LocalCluster, ns: str, name: str) -> dict[str, Any]:
    return ((get_cr(cluster.api, "DatabaseInstance", ns, name) or {}).get("status")) or {}


def _served(
    cluster: LocalCluster, ns: str, name: str, tmp_path: Path, says: str
) -> tuple[str, str, Path, dict[str, str]]:
    """Wait until ``name`` is Ready with its users and check TLSReady says ``says``; (rw ClusterIP, rw DNS
    name, CA file, credentials)."""
    wait_until(lambda: settled(_status(cluster, ns, name)), f"{name} Ready with its users", timeout=480)
    ready = _tls_ready(_status(cluster, ns, name))
    assert ready["status"] == "True" and says in ready["message"], ready
    core = client.CoreV1Api(cluster.api)
    names = ChildNames(name)
    secret = core.read_namespaced_secret(names.credentials_secret, ns)
    creds = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
    ca = tmp_path / f"{name}-ca.crt"
    ca.write_text(creds["ca.crt"])
    ip = str(core.read_namespaced_service(names.rw_service, ns).spec.cluster_ip)
    return ip, f"{names.rw_service}.{ns}.svc", ca, creds


def _tls_ready(status: dict[str, Any]) -> dict[str, Any]:
    (ready,) = [c for c in status.get("conditions", []) if c["type"] == "TLSReady"]
    return ready


def _routed(attempt: Any, what: str) -> Any:
    """``attempt()`` retried while the Service does not route yet (refused/reset), not on other errors."""
    last: list[str] = []

    def once() -> Any:
        try:
            return attempt()
        except (psycopg.OperationalError, pymysql.err.OperationalError) as exc:
            text = str(exc).lower()
            if "refused" not in text and "reset" not in text and "lost connection" not in text:
                raise
            last[:] = [text]
            return None

    return wait_until(once, f"{what} (last: {last})", timeout=60)


def test_postgresql_required_serves_verified_tls_and_refuses_plaintext(
    local_cluster: LocalCluster, tls_namespace: str, tmp_path: Path
) -> None:
    ns, name = tls_namespace, "pgtls"
    ip, service, ca, creds = _served(local_cluster, ns, name, tmp_path, "required: plaintext refused")

    def app(**tls: str) -> Any:
        return psycopg.connect(
            host=service, hostaddr=ip, port=5432, user=APP_USER, password=APP_PASSWORD, dbname=DATABASE,
            connect_timeout=5, autocommit=True, **tls,
        )  # fmt: skip

    with _routed(lambda: app(sslmode="verify-full", sslrootcert=str(ca)), "verified TLS") as conn:
        row = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row is not None and row[0] is True and row[1].startswith("TLSv1"), row
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        app(sslmode="disable")
    assert not probe(5432, "postgres", ca, name=f"other-rw.{ns}.svc", host=ip).verified
    assert probe(5432, "postgres", ca, name=service, host=ip).verified
    # The credentials Secret's URI, as written (its CA path names the Secret's ca.crt key).
    uri = creds["tls-uri"].replace("sslrootcert=ca.crt", f"sslrootcert={ca}")
    assert uri.startswith("postgresql://postgres:") and f"@{service}:5432/" in uri
    with psycopg.connect(uri, hostaddr=ip, connect_timeout=5) as admin:
        assert admin.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_mariadb_required_serves_verified_tls_and_refuses_plaintext(
    local_cluster: LocalCluster, tls_namespace: str, tmp_path: Path
) -> None:
    ns, name = tls_namespace, "mariatls"
    ip, service, ca, creds = _served(local_cluster, ns, name, tmp_path, "the installation's CA")
    assert creds["tls-uri"].endswith(f"@{service}:3306/?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.crt")

    # The name: openssl's STARTTLS handshake verifies the CA and the Service's DNS name (pymysql can
    # only check the address it dials, the ClusterIP, which no certificate names).
    assert probe(3306, "mysql", ca, name=service, host=ip).verified
    assert not probe(3306, "mysql", ca, name=f"other-rw.{ns}.svc", host=ip).verified
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False

    def app(**tls: Any) -> Any:
        return pymysql.connect(
            host=ip, port=3306, user=APP_USER, password=APP_PASSWORD, database=DATABASE, connect_timeout=5,
            autocommit=True, **tls,
        )  # fmt: skip

    conn = _routed(lambda: app(ssl=context), "verified TLS")
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            assert str(cur.fetchone()[1]).startswith("TLSv1")
    finally:
        conn.close()
    # Refused in plaintext: MariaDB answers "Access denied" under require_secure_transport.
    with pytest.raises(pymysql.err.OperationalError, match=r"insecure transport|Access denied"):
        app(ssl_disabled=True)
