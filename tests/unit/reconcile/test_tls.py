"""The reconcile's side of spec.tls: the engine's certificate Secret, the credentials Secret's TLS keys,
TLSReady, and an unusable spec.tls reported without a change."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from kubetrove.k8s.kinds import CUSTOM, EVENT, SECRET
from kubetrove.k8s.secrets import decode_secret
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases.tls import engine_tls_hosts, issued_tls_material
from kubetrove.render.names import ChildNames
from kubetrove.runtime import certs
from tests.unit.reconcile.conftest import LOG, NOW, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

HOSTS = engine_tls_hosts(ChildNames("db"), "ns")


@pytest.fixture(scope="module")
def ca() -> certs.KeyPair:
    return certs.new_ca("test CA", now=NOW, validity=datetime.timedelta(days=3650))


# --- the reconcile -----------------------------------------------------------------------------------


def _with_ca(deps: Deps, ca: certs.KeyPair) -> Deps:
    return dataclasses.replace(deps, agent_ca=ca)


def _tls_ready(kube: FakeKube) -> dict[str, Any] | None:
    status = kube.find(CUSTOM["DatabaseInstance"], "ns", "db")["status"]
    return next((c for c in status.get("conditions", []) if c["type"] == "TLSReady"), None)


async def test_the_reconcile_issues_the_certificate_and_says_how_to_connect(
    kube: FakeKube, deps: Deps, ca: certs.KeyPair
) -> None:
    kube.put(body(tls={"mode": "required"}))
    await run.reconcile(parsed(tls={"mode": "required"}), None, _with_ca(deps, ca), LOG)
    tls = decode_secret(kube.find(SECRET, "ns", "db-tls"))
    assert certs.dns_names(tls["tls.crt"].encode()) == HOSTS and certs.issued_by(
        tls["tls.crt"].encode(), ca.cert
    )
    assert tls["tls.pem"] == tls["tls.crt"] + tls["tls.key"] and tls["ca.crt"] == ca.cert.decode()
    creds = decode_secret(kube.find(SECRET, "ns", "db-credentials"))
    assert creds["ca.crt"] == ca.cert.decode()
    password = creds["root-password"]
    assert creds["tls-uri"] == (
        f"mysql://root:{password}@db-rw.ns.svc:3306/?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.crt"
    )
    ready = _tls_ready(kube)
    assert ready is not None and ready["status"] == "True" and ready["reason"] == "Serving"
    expiry = certs.not_after(tls["tls.crt"].encode()).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "required: plaintext refused" in ready["message"] and expiry in ready["message"]
    # Turned off: the credentials Secret's TLS keys and the condition go.
    await run.reconcile(parsed(generation=2), None, _with_ca(deps, ca), LOG)
    creds = decode_secret(kube.find(SECRET, "ns", "db-credentials"))
    assert "ca.crt" not in creds and "tls-uri" not in creds and creds["root-password"] == password
    assert _tls_ready(kube) is None


async def test_the_user_s_secret_is_served_and_a_missing_one_changes_nothing(
    kube: FakeKube, deps: Deps, ca: certs.KeyPair
) -> None:
    spec = {"tls": {"mode": "optional", "secretName": "mine"}}
    kube.put(body(**spec))
    with pytest.raises(NotReady, match=r"spec\.tls\.secretName: Secret mine does not exist"):
        await run.reconcile(parsed(**spec), None, deps, LOG)
    assert [k for k in kube.objects if k[1] not in ("DatabaseInstance", "Event")] == []
    ready = _tls_ready(kube)
    assert ready is not None and ready["status"] == "False" and "spec.tls.secretName" in ready["message"]
    (event,) = [v for k, v in kube.objects.items() if k[1] == EVENT.kind]
    assert event["type"] == "Warning" and "spec.tls.secretName" in event["note"]
    mine = issued_tls_material(ca, ["db.example.com"], {}, NOW)
    meta = {"name": "mine", "namespace": "ns"}
    kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": mine})
    await run.reconcile(parsed(**spec), None, deps, LOG)  # no installation CA needed
    assert decode_secret(kube.find(SECRET, "ns", "db-tls"))["tls.crt"] == mine["tls.crt"]
    ready = _tls_ready(kube)
    assert ready is not None and ready["status"] == "True" and "Secret mine" in ready["message"]


async def test_without_a_ca_or_a_secret_the_field_is_named(kube: FakeKube, deps: Deps) -> None:
    kube.put(body(tls={"mode": "required"}))
    with pytest.raises(NotReady, match=r"spec\.tls\.secretName: agent TLS is off"):
        await run.reconcile(parsed(tls={"mode": "required"}), None, deps, LOG)
    assert kube.find(SECRET, "ns", "db-credentials") is None


async def test_the_credentials_secret_holds_the_ca_and_no_uri_cassandra_has_none(
    kube: FakeKube, deps: Deps, ca: certs.KeyPair
) -> None:
    spec = {"datastore": {"type": "cassandra", "version": "5.0"}, "tls": {"mode": "required"}}
    kube.put(body(**spec))
    # The fake world has no ring to wait for: the reconcile stops at the users, after the Secrets.
    with pytest.raises(NotReady, match="users and databases wait"):
        await run.reconcile(parsed(**spec), None, _with_ca(deps, ca), LOG)
    creds = decode_secret(kube.find(SECRET, "ns", "db-credentials"))
    assert creds["ca.crt"] == ca.cert.decode() and "tls-uri" not in creds
    tls = decode_secret(kube.find(SECRET, "ns", "db-tls"))
    # Cassandra's PEM reader takes an unencrypted PKCS#8 key only.
    assert tls["tls.pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert "-----BEGIN PRIVATE KEY-----" in tls["tls.pem"]
