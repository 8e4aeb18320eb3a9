"""Cassandra's spec.tls: the rendered client and internode encryption, validation, the agent's CQL
connections over TLS and the reload through nodetool (its credentials Secret: reconcile/test_tls.py)."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
from typing import Any

import pytest
import yaml

from kubetrove.agent.engines.base import EngineUnavailable
from kubetrove.agent.engines.cassandra.driver import CassandraDriver
from kubetrove.agent.engines.cassandra.tls import ssl_context
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.api.common import Engine, TLSMode
from kubetrove.api.specs import InstanceSpec
from kubetrove.datastores.base import ServerTLS
from kubetrove.datastores.registry import REGISTRY
from kubetrove.datastores.validation import _tls, validate_spec
from tests.unit.render.fakes import FakeDatastore

REQUIRED = ServerTLS(TLSMode.REQUIRED, "/t/tls.crt", "/t/tls.key", "/t/ca.crt", "/t/tls.pem")
OPTIONAL = dataclasses.replace(REQUIRED, mode=TLSMode.OPTIONAL)
CASSANDRA = REGISTRY[Engine.CASSANDRA]
PEM = {"class_name": "org.apache.cassandra.security.PEMBasedSslContextFactory"}


def _yaml(tls: ServerTLS | None) -> dict[str, Any]:
    return yaml.safe_load(CASSANDRA.render_config({"concurrent_reads": "64"}, clustered=True, tls=tls))


def test_required_encrypts_clients_and_the_ring_with_the_combined_pem_and_refuses_plaintext() -> None:
    conf = _yaml(REQUIRED)
    assert conf["client_encryption_options"] == {
        "enabled": True,
        "optional": False,  # plaintext CQL refused
        "ssl_context_factory": PEM,
        "keystore": "/t/tls.pem",  # certificate and PKCS#8 key in one file: Cassandra's PEM reader
        "truststore": "/t/ca.crt",
        "require_client_auth": False,
        "accepted_protocols": ["TLSv1.2", "TLSv1.3"],
    }
    assert conf["server_encryption_options"] == {
        "internode_encryption": "all",
        "optional": False,
        "ssl_context_factory": PEM,
        "keystore": "/t/tls.pem",
        "truststore": "/t/ca.crt",
        "require_client_auth": True,  # a peer must present a certificate of the CA
        "require_endpoint_verification": False,  # peers connect by IP, which no certificate names
        "accepted_protocols": ["TLSv1.2", "TLSv1.3"],
    }
    assert conf["concurrent_reads"] == 64 and conf["authenticator"] == "PasswordAuthenticator"


def test_optional_accepts_plaintext_from_clients_and_peers_too() -> None:
    conf = _yaml(OPTIONAL)
    assert conf["client_encryption_options"]["optional"] is True
    assert conf["server_encryption_options"]["optional"] is True
    assert conf["server_encryption_options"]["internode_encryption"] == "all"  # still sent over TLS


def test_without_tls_nothing_is_encrypted() -> None:
    conf = _yaml(None)
    assert "client_encryption_options" not in conf and "server_encryption_options" not in conf


@pytest.mark.parametrize("mode", ["optional", "required", "disabled"])
def test_cassandra_accepts_every_mode(mode: str) -> None:
    wire = {"datastore": {"type": "cassandra", "version": "5.0"}, "tls": {"mode": mode}}
    assert not validate_spec(InstanceSpec.from_wire(wire))


def test_an_engine_without_client_tls_would_refuse_every_mode_but_disabled() -> None:
    class NoTLS(FakeDatastore):
        serves_tls = False

    spec = InstanceSpec.from_wire(
        {"datastore": {"type": "mysql", "version": "8.4"}, "tls": {"mode": "optional"}}
    )
    assert [p.field for p in _tls(spec, NoTLS())] == ["spec.tls.mode"]
    assert not _tls(spec.model_copy(update={"tls": None}), NoTLS())


# --- the agent ---------------------------------------------------------------------------------------


def test_the_agent_speaks_unverified_tls_to_its_own_node_only_when_the_engine_serves_it() -> None:
    assert ssl_context(EngineConfig(host="127.0.0.1")) is None
    context = ssl_context(EngineConfig(host="127.0.0.1", tls=True))
    assert context is not None
    assert context.verify_mode is ssl.CERT_NONE and not context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_the_driver_s_cluster_carries_the_context() -> None:
    plain = CassandraDriver(EngineConfig(host="127.0.0.1", user="u", password="p"))
    tls = CassandraDriver(EngineConfig(host="127.0.0.1", user="u", password="p", tls=True))
    assert plain._node.cluster_for("u", "p").ssl_context is None
    assert tls._node.cluster_for("u", "p").ssl_context.verify_mode is ssl.CERT_NONE


def test_reload_tls_is_nodetool_reloadssl_and_a_failure_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, ...]] = []

    def fake_run(argv: tuple[str, ...], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0 if len(calls) == 1 else 1, "", "Connection refused")

    monkeypatch.setattr(subprocess, "run", fake_run)
    driver = CassandraDriver(EngineConfig(host="127.0.0.1", tls=True, options={"jmx_port": "7299"}))
    driver.reload_tls()
    assert calls == [("nodetool", "-h", "127.0.0.1", "-p", "7299", "reloadssl")]
    with pytest.raises(EngineUnavailable, match="reloadssl"):
        driver.reload_tls()


def test_a_user_s_sec1_or_pkcs1_key_is_copied_as_pkcs8_which_cassandra_reads() -> None:
    import datetime

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from kubetrove.reconcile.phases.tls import user_material
    from kubetrove.runtime import certs

    now = datetime.datetime.now(datetime.UTC)
    ca = certs.new_ca("user CA", now=now)
    leaf = certs.sign(ca, ["db-rw.ns.svc"], now=now)
    key = serialization.load_pem_private_key(leaf.key, password=None)
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert traditional.startswith("-----BEGIN EC PRIVATE KEY-----")
    copied = user_material({"tls.crt": leaf.cert.decode(), "tls.key": traditional}, "mine")
    assert copied["tls.key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert certs.key_matches(leaf.cert, copied["tls.key"].encode())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1 = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert certs.pkcs8(pkcs1).startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_rendered_ring_reads_the_mounted_files_its_group_can_read() -> None:
    import datetime

    from kubetrove.api.specs import ClusterSpec
    from kubetrove.reconcile.phases.tls import engine_tls_hosts, issued_tls_material, with_pem
    from kubetrove.render import render
    from kubetrove.render.names import ChildNames
    from kubetrove.runtime import certs
    from tests.unit.render.fakes import inputs

    now = datetime.datetime.now(datetime.UTC)
    ca = certs.new_ca("test CA", now=now)
    hosts = engine_tls_hosts(ChildNames("orders"), "ns")
    spec = ClusterSpec.from_wire(
        {
            "datastore": {"type": "cassandra", "version": "5.0"},
            "storage": {"size": "1Gi"},
            "replicas": 3,
            "tls": {"mode": "required"},
        }
    )
    material = with_pem(issued_tls_material(ca, hosts, {}, now, also_client=True))
    keys = CASSANDRA.container("5.0").credential_keys
    m = render(dataclasses.replace(inputs(spec, extra_keys=keys), engine_tls=material), CASSANDRA)
    conf = yaml.safe_load(m.config_map["data"]["cassandra.yaml"])
    for options in ("client_encryption_options", "server_encryption_options"):
        assert conf[options]["keystore"] == "/etc/kubetrove/tls/tls.pem"
        assert conf[options]["truststore"] == "/etc/kubetrove/tls/ca.crt"
    pod = m.statefulset["spec"]["template"]["spec"]
    engine, agent = pod["containers"]
    mount = {"name": "engine-tls", "mountPath": "/etc/kubetrove/tls", "readOnly": True}
    assert mount in engine["volumeMounts"] and "--engine-tls-dir=/etc/kubetrove/tls" in agent["args"]
    # The files are 0440 owned by the pod's fsGroup: the cassandra user (999) is in it.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"] == 999
