"""The operator side of agent TLS: the CA Secret, the operator's client certificate, each database's
server certificate (kept, renewed), the rendered pod, and the https URL the gateway builds per pod."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest

from kubetrove.agent.protocol import base_url, split_tls_name
from kubetrove.handlers import agent_tls
from kubetrove.k8s.kinds import SECRET
from kubetrove.k8s.secrets import decode_secret
from kubetrove.members import Members, agent_tls_name, tls_client
from kubetrove.reconcile.phases.credentials import agent_tls_hosts, issued_tls_material
from kubetrove.render import render
from kubetrove.render.names import ANNOTATION_AGENT_TLS, ChildNames
from kubetrove.runtime import certs
from kubetrove.runtime.config import OperatorConfig
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.fake_kube import FakeKube
from tests.unit.render.fakes import FakeDatastore, inputs
from tests.unit.render.test_render_fake import cluster

NOW = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
HOSTS = agent_tls_hosts(ChildNames("db"), "ns")


@pytest.fixture(scope="module")
def ca() -> certs.KeyPair:
    return certs.new_ca("test agents CA", now=NOW, validity=agent_tls.CA_VALIDITY)


# --- the CA Secret ---------------------------------------------------------------------------------


async def test_the_ca_is_made_once_and_read_back_by_the_next_start() -> None:
    kube = FakeKube()
    made = await agent_tls.load_or_create_ca(kube, "kt-system", "kubetrove-agent-ca")
    stored = decode_secret(await kube.get(SECRET, "kt-system", "kubetrove-agent-ca"))
    assert stored["ca.crt"] == made.cert.decode() and stored["ca.key"] == made.key.decode()
    again = await agent_tls.load_or_create_ca(kube, "kt-system", "kubetrove-agent-ca")
    assert again == made


async def test_a_secret_without_a_usable_ca_is_named_in_the_error() -> None:
    kube = FakeKube()
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kubetrove-agent-ca", "namespace": "kt-system"},
            "stringData": {"ca.crt": "not a certificate", "ca.key": "nor a key"},
        }
    )
    with pytest.raises(agent_tls.AgentCAError, match="kt-system/kubetrove-agent-ca"):
        await agent_tls.load_or_create_ca(kube, "kt-system", "kubetrove-agent-ca")


def test_the_client_certificate_is_renewed_within_a_month_of_its_end(
    ca: certs.KeyPair, tmp_path: Path
) -> None:
    client = agent_tls.ClientTLS(ca, tmp_path)
    assert not client.due(datetime.datetime.now(datetime.UTC))
    assert client.due(client.expires - datetime.timedelta(days=29))
    first = client.expires
    client.renew(now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1))
    assert client.expires > first


# --- each database's server certificate -------------------------------------------------------------


def test_a_valid_certificate_is_kept_and_one_near_its_end_is_renewed(ca: certs.KeyPair) -> None:
    first = issued_tls_material(ca, HOSTS, {}, NOW)
    assert certs.dns_names(first["tls.crt"].encode()) == [
        "*.db-headless.ns.svc",
        "*.db-headless.ns.svc.cluster.local",
    ]
    assert first["ca.crt"] == ca.cert.decode() and "ca.key" not in first  # the CA's key never leaves
    assert issued_tls_material(ca, HOSTS, first, NOW + datetime.timedelta(days=300)) == first
    renewed = issued_tls_material(ca, HOSTS, first, NOW + datetime.timedelta(days=340))
    assert renewed["tls.crt"] != first["tls.crt"]


def test_another_ca_other_hosts_or_garbage_get_a_new_certificate(ca: certs.KeyPair) -> None:
    first = issued_tls_material(ca, HOSTS, {}, NOW)
    other = certs.new_ca("another CA", now=NOW)
    assert issued_tls_material(other, HOSTS, first, NOW)["ca.crt"] == other.cert.decode()
    moved = agent_tls_hosts(ChildNames("db"), "elsewhere")
    assert certs.dns_names(issued_tls_material(ca, moved, first, NOW)["tls.crt"].encode())[0] == moved[0]
    garbage = {**first, "tls.crt": "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"}
    assert issued_tls_material(ca, HOSTS, garbage, NOW)["tls.crt"] != garbage["tls.crt"]


# --- the rendered pod -------------------------------------------------------------------------------


def test_the_pod_mounts_the_certificate_serves_https_and_says_so(ca: certs.KeyPair) -> None:
    import dataclasses

    material = issued_tls_material(ca, HOSTS, {}, NOW)
    tls_inputs = dataclasses.replace(inputs(cluster()), agent_tls=material)
    m = render(tls_inputs, FakeDatastore())
    assert m.agent_tls_secret is not None and m.agent_tls_secret["stringData"] == dict(
        sorted(material.items())
    )
    assert m.all().index(m.agent_tls_secret) < m.all().index(m.statefulset)
    template = m.statefulset["spec"]["template"]
    assert template["metadata"]["annotations"][ANNOTATION_AGENT_TLS] == "true"
    agent = next(c for c in template["spec"]["containers"] if c["name"] == "agent")
    tls_dir = "/var/run/kubetrove/agent-tls"
    assert {
        f"--tls-cert={tls_dir}/tls.crt",
        f"--tls-key={tls_dir}/tls.key",
        f"--tls-client-ca={tls_dir}/ca.crt",
    } <= set(agent["args"])
    assert {"name": "agent-tls", "mountPath": tls_dir, "readOnly": True} in agent["volumeMounts"]
    assert {agent[p]["httpGet"]["scheme"] for p in ("startupProbe", "readinessProbe", "livenessProbe")} == {
        "HTTPS"
    }
    # A renewed certificate changes the Secret, never the pod template: no restart.
    renewed = dataclasses.replace(tls_inputs, agent_tls=issued_tls_material(ca, HOSTS, {}, NOW))
    assert render(renewed, FakeDatastore()).statefulset == m.statefulset


def test_without_tls_nothing_of_it_is_rendered() -> None:
    m = render(inputs(cluster()), FakeDatastore())
    template = m.statefulset["spec"]["template"]
    assert m.agent_tls_secret is None and ANNOTATION_AGENT_TLS not in template["metadata"]["annotations"]
    agent = next(c for c in template["spec"]["containers"] if c["name"] == "agent")
    assert not [a for a in agent["args"] if a.startswith("--tls")]


# --- the gateway's URL and client -------------------------------------------------------------------


def pod(name: str, ip: str, tls: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"app.kubernetes.io/instance": "db"}}
    if tls:
        meta["annotations"] = {ANNOTATION_AGENT_TLS: "true"}
    return {"metadata": meta, "status": {"podIP": ip}}


def test_each_pod_is_reached_the_way_its_own_template_serves() -> None:
    gateway = Members(FakeKube(), FakeAgents())
    assert (
        gateway.url("ns", pod("db-0", "10.0.0.1", tls=True))
        == "https://10.0.0.1:8432#db-0.db-headless.ns.svc"
    )
    assert gateway.url("ns", pod("db-1", "10.0.0.2", tls=False)) == "http://10.0.0.2:8432"
    assert agent_tls_name(pod("db-1", "10.0.0.2", tls=False), "ns") is None


def test_an_endpoint_override_is_used_as_given() -> None:
    config = OperatorConfig(agent_endpoints={"ns/db-0": "http://127.0.0.1:9000"})
    assert config.agent_url("ns", "db-0", "10.0.0.1", "db-0.db-headless.ns.svc") == "http://127.0.0.1:9000"
    assert config.agent_url("ns", "db-1", "10.0.0.2", "db-1.x") == "https://10.0.0.2:8432#db-1.x"
    assert OperatorConfig.from_env({}).agent_tls
    assert not OperatorConfig.from_env({"KUBETROVE_AGENT_TLS": "false"}).agent_tls


def test_the_name_rides_in_the_fragment_and_never_reaches_the_wire() -> None:
    assert split_tls_name(base_url("10.0.0.1", "db-0.x")) == ("https://10.0.0.1:8432", "db-0.x")
    assert split_tls_name(base_url("10.0.0.1")) == ("http://10.0.0.1:8432", None)
    connect = tls_client(ssl.create_default_context())
    client = connect(base_url("10.0.0.1", "db-0.x"), "t0k")
    assert client.base_url == "https://10.0.0.1:8432"
    assert connect(base_url("10.0.0.1"), "t0k").base_url == "http://10.0.0.1:8432"
    asyncio.run(client.close())


async def test_the_operator_s_context_verifies_a_member_by_its_dns_name(
    ca: certs.KeyPair, tmp_path: Path
) -> None:
    material = issued_tls_material(ca, HOSTS, {}, datetime.datetime.now(datetime.UTC))
    certfile, keyfile = certs.write(
        certs.KeyPair(material["tls.crt"].encode(), material["tls.key"].encode()), tmp_path
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(certfile, keyfile)
    server_ctx.load_verify_locations(cadata=ca.cert.decode())
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    peers: list[Any] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peercert"))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    client = agent_tls.ClientTLS(ca, tmp_path / "client")
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client.context, server_hostname="db-2.db-headless.ns.svc"
        )
        writer.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=client.context, server_hostname="db-0.other-headless.ns.svc"
            )
    finally:
        server.close()
    assert peers and dict(x[0] for x in peers[0]["subject"])["commonName"] == "kubetrove-operator"


def test_the_clustering_loop_reaches_each_member_the_way_its_template_serves() -> None:
    from kubetrove.api.common import Engine
    from kubetrove.api.resources import CLUSTER, ObjectRef
    from kubetrove.clustering import runner
    from kubetrove.clustering.kube_record import KubeClusterRecord
    from kubetrove.datastores import registry

    kube, store = FakeKube(), registry.get(Engine.MARIADB)
    ref = ObjectRef(namespace="ns", name="db", uid="uid-db", generation=1, kind=CLUSTER)
    wiring = runner.Wiring(
        kube, ref, store, "11.8", OperatorConfig().agent_url, lambda ns, pod, default: default
    )
    record = KubeClusterRecord(kube, ref, store)
    record.pods = {
        "db-0": pod("db-0", "10.0.0.1", tls=True),
        "db-1": pod("db-1", "10.0.0.2", tls=False),
        "db-2": None,
    }
    found = runner.endpoints(wiring, record)
    assert found["db-0"].agent_url == "https://10.0.0.1:8432#db-0.db-headless.ns.svc"
    assert found["db-1"].agent_url == "http://10.0.0.2:8432"  # not rolled onto TLS yet
    assert found["db-2"].agent_url == "http://db-2.db-headless.ns.svc:8432"  # no pod: nothing says TLS
