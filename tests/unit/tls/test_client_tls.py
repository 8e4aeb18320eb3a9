"""Client TLS of the engines (spec.tls): the model, each engine's rendering, the certificate's names and
usages, the user's Secret, the pod template across renewals, and the reconcile's Secrets and TLSReady."""

from __future__ import annotations

import dataclasses
import datetime
import ssl
import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kubetrove.agent.app import make_app
from kubetrove.agent.auth import EngineTLSFiles
from kubetrove.agent.engines.base import EngineUnavailable
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mariadb.backup import MariaDBMethods
from kubetrove.agent.engines.mariadb.driver import MariaDBDriver
from kubetrove.agent.engines.mysql.backup import MySQLMethods
from kubetrove.agent.engines.mysql.driver import MySQLDriver
from kubetrove.agent.engines.mysql_family.driver import client_tls
from kubetrove.agent.main import parse_args
from kubetrove.api.common import Engine, TLSMode, TLSSpec
from kubetrove.api.specs import InstanceSpec
from kubetrove.datastores.base import ServerTLS
from kubetrove.datastores.postgresql import start
from kubetrove.datastores.registry import REGISTRY
from kubetrove.datastores.validation import validate_spec
from kubetrove.reconcile.phases.tls import (
    TLSUnusable,
    engine_tls_hosts,
    issued_tls_material,
    user_material,
    with_pem,
)
from kubetrove.render import render
from kubetrove.render.names import ANNOTATION_TLS_MODE, ChildNames
from kubetrove.runtime import certs
from tests.unit.agent.fake_driver import FakeDriver
from tests.unit.reconcile.conftest import NOW
from tests.unit.render.fakes import FakeDatastore, inputs
from tests.unit.render.test_render_fake import cluster

REQUIRED = ServerTLS(TLSMode.REQUIRED, "/t/tls.crt", "/t/tls.key", "/t/ca.crt", "/t/tls.pem")
OPTIONAL = dataclasses.replace(REQUIRED, mode=TLSMode.OPTIONAL)
HOSTS = engine_tls_hosts(ChildNames("db"), "ns")


@pytest.fixture(scope="module")
def ca() -> certs.KeyPair:
    return certs.new_ca("test CA", now=NOW, validity=datetime.timedelta(days=3650))


# --- the API -----------------------------------------------------------------------------------------


def test_tls_is_disabled_unless_asked_and_absent_from_the_wire() -> None:
    spec = InstanceSpec.from_wire({"datastore": {"type": "postgresql", "version": "15"}})
    assert spec.tls is None and spec.tls_mode is TLSMode.DISABLED
    assert "tls" not in spec.to_wire()  # a spec written before spec.tls serialises unchanged
    assert TLSSpec.from_wire({}).mode is TLSMode.DISABLED


@pytest.mark.parametrize(
    "tls", [{"mode": "on"}, {"mode": "required", "secretName": "Not_A_Name"}, {"mode": "required", "x": 1}]
)
def test_bad_tls_input_is_refused_by_the_model(tls: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError, match="tls"):
        InstanceSpec.from_wire({"datastore": {"type": "postgresql", "version": "15"}, "tls": tls})


def test_the_crd_schema_lists_the_modes() -> None:
    crd = yaml.safe_load(Path("crds/databaseinstances.kubetrove.io.yaml").read_text())
    tls = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tls"]
    assert tls["properties"]["mode"]["enum"] == ["disabled", "optional", "required"]
    assert "pattern" in tls["properties"]["secretName"]


def test_every_engine_serves_client_tls() -> None:
    # An engine that did not would be refused naming spec.tls.mode (tests/unit/tls/test_cassandra_tls.py).
    for engine in Engine:
        store = REGISTRY[engine]
        wire = {"datastore": {"type": engine.value, "version": next(iter(store.versions))}}
        spec = InstanceSpec.from_wire({**wire, "tls": {"mode": "required"}})
        assert store.serves_tls and not validate_spec(spec), engine


# --- each engine's configuration ---------------------------------------------------------------------


@pytest.mark.parametrize("engine", list(Engine))
def test_without_tls_every_config_and_container_is_as_before(engine: Engine) -> None:
    store = REGISTRY[engine]
    version = next(iter(store.versions))
    assert store.render_config({}, True, None) == store.render_config({}, True)
    assert store.container(version, None) == store.container(version)


def test_postgresql_serves_the_files_and_pg_hba_refuses_plaintext_tcp_when_required() -> None:
    pg = REGISTRY[Engine.POSTGRESQL]
    conf = pg.render_config({}, tls=OPTIONAL).splitlines()
    assert {"ssl = on", "ssl_cert_file = '/t/tls.crt'", "ssl_key_file = '/t/tls.key'"} <= set(conf)
    optional, required = pg.container("15", OPTIONAL).command[2], pg.container("15", REQUIRED).command[2]
    assert "hostnossl" not in optional and "'host all all all scram-sha-256'" in optional
    assert (
        "'hostnossl all all all reject'" in required
        and "'hostssl replication all all scram-sha-256'" in required
    )
    assert "'host all all all scram-sha-256'" not in required
    assert "'local all all trust'" in required  # the socket stays open to the container itself
    assert start.HBA_LINES_TLS_REQUIRED[0] == start.HBA_LINES[0]


@pytest.mark.parametrize("engine", [Engine.MARIADB, Engine.MYSQL])
def test_the_mysql_family_names_the_files_and_requires_secure_transport(engine: Engine) -> None:
    store = REGISTRY[engine]
    optional = store.render_config({}, tls=OPTIONAL).splitlines()
    assert {"ssl_cert = /t/tls.crt", "ssl_key = /t/tls.key", "ssl_ca = /t/ca.crt"} <= set(optional)
    assert "require_secure_transport = OFF" in optional
    assert "require_secure_transport = ON" in store.render_config({}, tls=REQUIRED).splitlines()


def test_mongodb_prefers_or_requires_tls_with_the_combined_pem() -> None:
    mongo = REGISTRY[Engine.MONGODB]
    text = mongo.render_config({}, clustered=True, tls=REQUIRED)
    tls = yaml.safe_load(text)["net"]["tls"]
    assert tls == {
        "mode": "requireTLS",
        "certificateKeyFile": "/t/tls.pem",
        "CAFile": "/t/ca.crt",
        "allowConnectionsWithoutCertificates": True,
    }
    assert yaml.safe_load(mongo.render_config({}, tls=OPTIONAL))["net"]["tls"]["mode"] == "preferTLS"


def test_the_client_uris_ask_for_verified_tls() -> None:
    def uri(engine: Engine) -> str:
        return REGISTRY[engine].client.uri("u", "p w", "db-rw.ns.svc", 1, tls_ca="ca.crt")

    assert uri(Engine.POSTGRESQL).endswith("/postgres?sslmode=verify-full&sslrootcert=ca.crt")
    assert uri(Engine.MARIADB) == "mysql://u:p%20w@db-rw.ns.svc:1/?ssl-mode=VERIFY_IDENTITY&ssl-ca=ca.crt"
    assert uri(Engine.MONGODB).endswith("/admin?authSource=admin&tls=true&tlsCAFile=ca.crt")
    assert "ssl" not in REGISTRY[Engine.POSTGRESQL].client.uri("u", "p", "h", 1)


# --- the certificate ---------------------------------------------------------------------------------


def test_the_certificate_names_the_services_and_every_member_and_serves_both_ways(ca: certs.KeyPair) -> None:
    assert HOSTS[0] == "db-rw.ns.svc"
    assert {"db-rw.ns.svc.cluster.local", "db-ro.ns.svc", "db-rw", "db-ro.ns"} <= set(HOSTS)
    assert {"*.db-headless.ns.svc", "*.db-headless.ns.svc.cluster.local"} <= set(HOSTS)
    material = issued_tls_material(ca, HOSTS, {}, NOW, also_client=True)
    cert = x509.load_pem_x509_certificate(material["tls.crt"].encode())
    assert certs.dns_names(material["tls.crt"].encode()) == HOSTS
    usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}  # mongod members
    # Kept while valid, renewed within 30 days of its end (the agent's rule, shared).
    assert issued_tls_material(ca, HOSTS, material, NOW, also_client=True) == material
    later = NOW + datetime.timedelta(days=340)
    assert issued_tls_material(ca, HOSTS, material, later, also_client=True) != material


@pytest.mark.parametrize("name", ["db-rw.ns.svc", "db-ro.ns.svc.cluster.local", "db-1.db-headless.ns.svc"])
def test_a_client_verifying_the_ca_and_the_name_accepts_the_server(
    ca: certs.KeyPair, tmp_path: Path, name: str
) -> None:
    material = issued_tls_material(ca, HOSTS, {}, datetime.datetime.now(datetime.UTC), also_client=True)
    (tmp_path / "pem").write_text(with_pem(material)["tls.pem"])
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "pem")  # the combined PEM loads as certificate + key
    client = ssl.create_default_context(cadata=ca.cert.decode())
    _handshake(server, client, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server, client, "other-rw.ns.svc")


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> None:
    import socket

    a, b = socket.socketpair()
    done = threading.Event()

    def serve() -> None:
        try:
            server.wrap_socket(a, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass
        finally:
            done.set()

    threading.Thread(target=serve, daemon=True).start()
    try:
        client.wrap_socket(b, server_hostname=name).close()
    finally:
        b.close()
        done.wait(10)
        a.close()


def test_the_user_s_secret_is_checked_and_copied(ca: certs.KeyPair) -> None:
    mine = issued_tls_material(ca, ["db.example.com"], {}, NOW)
    other = issued_tls_material(ca, ["db.example.com"], {}, NOW)
    copied = user_material({"tls.crt": mine["tls.crt"], "tls.key": mine["tls.key"]}, "mine")
    assert copied["ca.crt"] == mine["tls.crt"]  # no ca.crt: the certificate is its own CA file
    assert user_material(mine, "mine")["ca.crt"] == ca.cert.decode()
    with pytest.raises(TLSUnusable, match=r"spec.tls.secretName: Secret mine lacks key\(s\) tls.key"):
        user_material({"tls.crt": mine["tls.crt"]}, "mine")
    with pytest.raises(TLSUnusable, match=r"tls\.key is not the key of tls\.crt"):
        user_material({"tls.crt": mine["tls.crt"], "tls.key": other["tls.key"]}, "mine")
    with pytest.raises(TLSUnusable, match="not an unencrypted PEM"):
        user_material({"tls.crt": "garbage", "tls.key": mine["tls.key"]}, "mine")


# --- the pod ---------------------------------------------------------------------------------------


def test_the_engine_mounts_its_certificate_and_a_renewal_keeps_the_pod_template(ca: certs.KeyPair) -> None:
    spec = cluster(tls={"mode": "required"})
    material = with_pem(issued_tls_material(ca, HOSTS, {}, NOW, also_client=True))
    tls_inputs = dataclasses.replace(inputs(spec), engine_tls=material)
    m = render(tls_inputs, FakeDatastore())
    assert m.engine_tls_secret is not None and m.engine_tls_secret["metadata"]["name"] == "orders-tls"
    assert set(m.engine_tls_secret["stringData"]) == {"ca.crt", "tls.crt", "tls.key", "tls.pem"}
    assert m.all().index(m.engine_tls_secret) < m.all().index(m.statefulset)
    template = m.statefulset["spec"]["template"]
    assert template["metadata"]["annotations"][ANNOTATION_TLS_MODE] == "required"
    engine, agent = template["spec"]["containers"]
    mount = {"name": "engine-tls", "mountPath": "/etc/kubetrove/tls", "readOnly": True}
    assert mount in engine["volumeMounts"] and mount in agent["volumeMounts"]  # the agent watches it
    volume = next(v for v in template["spec"]["volumes"] if v["name"] == "engine-tls")
    assert volume["secret"] == {"secretName": "orders-tls", "defaultMode": 0o440}
    assert "--engine-tls-dir=/etc/kubetrove/tls" in agent["args"]
    (config,) = m.config_map["data"].values()
    assert "tls = required /etc/kubetrove/tls/tls.crt" in config
    renewed = dataclasses.replace(tls_inputs, engine_tls=with_pem(issued_tls_material(ca, HOSTS, {}, NOW)))
    assert render(renewed, FakeDatastore()).statefulset == m.statefulset
    optional = dataclasses.replace(tls_inputs, spec=cluster(tls={"mode": "optional"}))
    assert render(optional, FakeDatastore()).statefulset != m.statefulset  # a new mode rolls the pods


def test_without_tls_the_pod_has_none_of_it() -> None:
    for spec in (cluster(), cluster(tls={"mode": "disabled"})):
        m = render(inputs(spec), FakeDatastore())
        template = m.statefulset["spec"]["template"]
        assert m.engine_tls_secret is None and ANNOTATION_TLS_MODE not in template["metadata"]["annotations"]
        assert not [a for a in template["spec"]["containers"][1]["args"] if a.startswith("--engine-tls")]
        assert "engine-tls" not in str(template)


# --- the agent ---------------------------------------------------------------------------------------


def test_the_agent_connects_and_replicates_over_tls_when_told() -> None:
    args = parse_args(["--engine=mariadb", "--token-file=/t", "--engine-tls-dir=/etc/kubetrove/tls"])
    assert args.engine_tls_dir == "/etc/kubetrove/tls"
    assert parse_args(["--engine=mariadb", "--token-file=/t"]).engine_tls_dir is None
    assert client_tls(EngineConfig()) is None
    context = client_tls(EngineConfig(tls=True))
    assert context is not None and context.verify_mode is ssl.CERT_NONE  # the pod's own loopback
    assert "MASTER_SSL = 1" in MariaDBDriver.CHANGE_SOURCE_TLS
    assert "SOURCE_SSL = 1" in MySQLDriver.CHANGE_SOURCE_TLS
    assert "\nssl\n" in MariaDBMethods.defaults_file(EngineConfig(tls=True))
    assert "ssl-mode=REQUIRED" in MySQLMethods.defaults_file(EngineConfig(tls=True))
    assert "ssl" not in MariaDBMethods.defaults_file(EngineConfig())


def test_the_tls_files_report_a_swap_once(tmp_path: Path) -> None:
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("one")
    files = EngineTLSFiles(str(tmp_path))
    assert not files.changed()
    (tmp_path / "tls.crt").write_text("renewed")
    assert files.changed()
    files.done()
    assert not files.changed()
    assert EngineTLSFiles(str(tmp_path / "absent")).changed() is False  # not mounted: nothing to do


class ReloadingDriver(FakeDriver):
    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.reloads, self.failures = 0, failures

    def reload_tls(self) -> None:
        if self.failures:
            self.failures -= 1
            raise EngineUnavailable("engine down")
        self.reloads += 1


async def test_the_agent_has_the_engine_reread_renewed_files(tmp_path: Path) -> None:
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text("one")
    driver = ReloadingDriver(failures=1)
    app = make_app(driver, "tok", engine_tls=EngineTLSFiles(str(tmp_path)), engine_tls_interval=0.01)
    async with TestClient(TestServer(app)):
        await asyncio.sleep(0.1)
        assert driver.reloads == 0  # nothing changed
        (tmp_path / "tls.key").write_text("renewed")
        for _ in range(200):  # the first reload fails (engine down) and is tried again
            if driver.reloads:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
    assert driver.reloads == 1 and driver.failures == 0
