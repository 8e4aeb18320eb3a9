"""The console's server in process, against the in-memory fake API server: the login token and
cookie, the CSRF field, the Host check, errors as pages, and a 403 shown as a refusal, never data.
(tests/e2e/test_console.py drives the same server in a browser against a real control plane.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import escape
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetrove.api.common import API_VERSION
from kubetrove.cli import commands
from kubetrove.console import app as console_app
from kubetrove.console.app import Console
from kubetrove.k8s import kinds
from kubetrove.k8s.errors import ApiError
from kubetrove.k8s.kinds import ResourceType
from kubetrove.render.names import ChildNames
from tests.unit.reconcile.fake_kube import FakeKube, Obj

PASSWORD = "s3cr3t-Pa55"
APP_PASSWORD = "app-Pa55"


class RbacKube(FakeKube):
    """The fake API server with a user who may not ``verb`` the kinds in ``denied``."""

    def __init__(self, denied: set[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.denied = denied or set()

    def _check(self, verb: str, kind: str) -> None:
        if (verb, kind) in self.denied:
            raise ApiError(403, "Forbidden", f'user "dev" cannot {verb} resource "{kind}"')

    async def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        self._check("get", rtype.kind)
        return await super().get(rtype, namespace, name)

    async def list(self, rtype: ResourceType, namespace: str | None, labels: Any = None) -> list[Obj]:
        self._check("list", rtype.kind)
        return await super().list(rtype, namespace, labels)

    async def create(self, manifest: Obj) -> Obj:
        if manifest["kind"] == kinds.SELF_SUBJECT_ACCESS_REVIEW.kind:
            attrs = manifest["spec"]["resourceAttributes"]
            denied = (attrs["verb"], "Secret") in self.denied and attrs["resource"] == "secrets"
            return {**manifest, "status": {"allowed": not denied}}
        self._check("create", manifest["kind"])
        return await super().create(manifest)


def seed(kube: FakeKube) -> None:
    kube.put({
        "apiVersion": API_VERSION, "kind": "DatabaseInstance",
        "metadata": {"name": "shop", "namespace": "dev", "creationTimestamp": "2026-12-04T10:00:00Z"},
        "spec": {"datastore": {"type": "mariadb", "version": "10.11"}, "users": [{"name": "app"}]},
        "status": {"phase": "Ready", "credentialsSecret": "shop-credentials",
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Up"}]},
    })  # fmt: skip
    app = {"name": ChildNames("shop").user_secret("app"), "namespace": "dev"}
    kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": app, "stringData": {"password": APP_PASSWORD}}
    )
    secret = {"name": "shop-credentials", "namespace": "dev"}
    kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": secret, "stringData": {"root-password": PASSWORD}}
    )


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[Any, Any], Console, RbacKube]]:
    kube = RbacKube()
    seed(kube)
    console = Console(kube, "dev", "kind-dev")
    client = TestClient(TestServer(console_app.make_app(console)))
    await client.start_server()
    yield client, console, kube
    await client.close()


async def login(client: TestClient[Any, Any], console: Console) -> None:
    resp = await client.get(f"/login?token={console.token}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith(f"{console.cookie}={console.session};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_nothing_without_the_token(served: Any) -> None:
    client, console, _ = served
    for path in ("/", "/ns/dev", "/ns/dev/db/shop"):
        resp = await client.get(path)
        assert resp.status == 401 and "shop" not in (await resp.text()).split("<main>")[1]
    assert (await client.get("/login?token=wrong")).status == 401
    resp = await client.post("/ns/dev/db/shop/credentials", data={"csrf": console.csrf})
    assert resp.status == 401 and PASSWORD not in await resp.text()
    assert (await client.get("/static/console.css")).status == 200  # assets hold no data


async def test_pages_as_the_user_with_security_headers(served: Any) -> None:
    client, console, _ = served
    await login(client, console)
    resp = await client.get("/ns/dev")
    text = await resp.text()
    assert resp.status == 200 and 'href="/ns/dev/db/shop"' in text
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["Referrer-Policy"] == "no-referrer"
    page = await (await client.get("/ns/dev/db/shop")).text()
    assert re.search(r'id="phase">Ready<', page) and 'id="reveal"' in page


async def test_a_post_without_its_csrf_field_changes_nothing(served: Any) -> None:
    client, console, kube = served
    await login(client, console)
    for data in ({}, {"csrf": "guess"}):
        resp = await client.post("/ns/dev/db/shop/backup", data=data)
        assert resp.status == 403 and "Form token" in await resp.text()
    assert not [c for c in kube.writes() if c[1] == "DatabaseBackup"]


async def test_host_and_origin_checks_when_bound_to_loopback(served: Any) -> None:
    client, console, kube = served
    await login(client, console)
    console.hosts = frozenset({f"127.0.0.1:{client.port}"})
    resp = await client.get("/ns/dev", headers={"Host": "attacker.example"})
    assert resp.status == 421
    resp = await client.post("/ns/dev/db/shop/backup", data={"csrf": console.csrf},
                             headers={"Origin": "http://evil.example"})  # fmt: skip
    assert resp.status == 403 and "Cross-site" in await resp.text()
    assert not [c for c in kube.writes() if c[1] == "DatabaseBackup"]


async def test_create_backup_reveal_delete(served: Any) -> None:
    client, console, kube = served
    await login(client, console)
    default = next(c for c in commands.catalog() if c["engine"] == "postgresql" and c["default"])
    form = {"csrf": console.csrf, "name": "orders", "offering": f"postgresql/{default['version']}",
            "replicas": "3", "user": "app", "database": "orders", "privilege": "readWrite"}  # fmt: skip
    resp = await client.post("/ns/dev/new", data=form, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ns/dev/db/orders"
    made = kube.find(kinds.CUSTOM["DatabaseCluster"], "dev", "orders")
    assert made is not None and made["spec"]["replicas"] == 3
    assert "DatabaseCluster/orders created" in await (await client.get("/ns/dev/db/orders")).text()
    # a version the catalog does not offer: the form again, with the reason, nothing created
    resp = await client.post("/ns/dev/new", data={**form, "name": "other", "offering": "mariadb/0.1"})
    assert resp.status == 400 and "mariadb 0.1 is not in the catalog" in await resp.text()
    assert kube.find(kinds.CUSTOM["DatabaseInstance"], "dev", "other") is None

    resp = await client.post("/ns/dev/db/shop/backup", data={"csrf": console.csrf, "method": "auto"})
    assert resp.status == 200 and [c for c in kube.writes() if c[:2] == ("create", "DatabaseBackup")]
    text = await (await client.post("/ns/dev/db/shop/credentials", data={"csrf": console.csrf})).text()
    assert f'<code id="password">{PASSWORD}</code>' in text
    form = {"csrf": console.csrf, "user": "app"}
    text = await (await client.post("/ns/dev/db/shop/credentials", data=form)).text()
    assert f'<code id="password">{APP_PASSWORD}</code>' in text and '<code id="user">app</code>' in text

    resp = await client.post("/ns/dev/db/shop/delete", data={"csrf": console.csrf, "confirm": "sho"})
    assert resp.status == 400 and kube.find(kinds.CUSTOM["DatabaseInstance"], "dev", "shop") is not None
    resp = await client.post("/ns/dev/db/shop/delete", data={"csrf": console.csrf, "confirm": "shop"})
    assert resp.status == 200 and "DatabaseInstance/shop is being deleted" in await resp.text()
    assert kube.find(kinds.CUSTOM["DatabaseInstance"], "dev", "shop") is None


async def test_a_refusal_is_a_page_never_data(served: Any) -> None:
    client, console, kube = served
    kube.denied = {("get", "Secret"), ("create", "DatabaseBackup"), ("list", "Namespace")}
    await login(client, console)
    page = await (await client.get("/ns/dev/db/shop")).text()
    assert 'id="reveal"' not in page and 'id="no-reveal"' in page
    resp = await client.post("/ns/dev/db/shop/credentials", data={"csrf": console.csrf})
    text = await resp.text()
    assert resp.status == 403 and "Refused by Kubernetes" in text and PASSWORD not in text
    resp = await client.post("/ns/dev/db/shop/backup", data={"csrf": console.csrf})
    assert resp.status == 403 and escape('cannot create resource "DatabaseBackup"') in await resp.text()
    # may not list namespaces: the context's namespace is offered instead
    resp = await client.get("/")
    assert resp.status == 200 and 'href="/ns/dev"' in await resp.text()


async def test_missing_things_are_404_pages(served: Any) -> None:
    client, console, _ = served
    await login(client, console)
    resp = await client.get("/ns/dev/db/nothing")
    assert (
        resp.status == 404 and escape('no DatabaseInstance or DatabaseCluster "nothing"') in await resp.text()
    )
    resp = await client.get("/no/such/page")
    assert resp.status == 404 and 'id="error-title"' in await resp.text()


async def test_the_form_offers_what_the_namespace_s_policies_allow(served: Any) -> None:
    client, console, kube = served
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev", "labels": {"env": "dev"}}})
    kube.put({
        "apiVersion": API_VERSION, "kind": "DatabasePolicy", "metadata": {"name": "dev-rules"},
        "spec": {"namespaceSelector": {"matchLabels": {"env": "dev"}},
                 "engines": [{"type": "postgresql", "tier": "evaluation"}]},
    })  # fmt: skip
    await login(client, console)
    page = await (await client.get("/ns/dev/new")).text()
    offered = re.findall(r'<option value="([^"]+)"', page.split('name="offering"')[1].split("</select>")[0])
    postgres = [f"postgresql/{c['version']}" for c in commands.catalog() if c["engine"] == "postgresql"]
    assert offered == postgres and "evaluation)" in page
    mariadb = next(c["version"] for c in commands.catalog() if c["engine"] == "mariadb")
    form = {"csrf": console.csrf, "name": "m", "offering": f"mariadb/{mariadb}"}
    resp = await client.post("/ns/dev/new", data=form)
    assert resp.status == 400 and f"mariadb {mariadb} is not offered in dev" in await resp.text()
    assert kube.find(kinds.CUSTOM["DatabaseInstance"], "dev", "m") is None


async def test_switchover_and_restore_ask_for_the_right_resources(served: Any) -> None:
    client, console, kube = served
    kube.put({
        "apiVersion": API_VERSION, "kind": "DatabaseCluster",
        "metadata": {"name": "orders", "namespace": "dev", "creationTimestamp": "2026-12-04T10:00:00Z"},
        "spec": {"datastore": {"type": "mariadb", "version": "10.11"}, "replicas": 2,
                 "storage": {"size": "3Gi"}},
        "status": {"phase": "Ready", "primary": "orders-0",
                   "members": [{"pod": "orders-0", "role": "primary", "healthy": True},
                               {"pod": "orders-1", "role": "replica", "healthy": True}]},
    })  # fmt: skip
    kube.put({
        "apiVersion": API_VERSION, "kind": "DatabaseBackup",
        "metadata": {"name": "orders-b1", "namespace": "dev", "creationTimestamp": "2026-12-04T11:00:00Z"},
        "spec": {"source": {"kind": "DatabaseCluster", "name": "orders"}},
        "status": {"phase": "Completed", "completedAt": "2026-12-04T11:01:00Z"},
    })  # fmt: skip
    await login(client, console)
    page = await (await client.get("/ns/dev/db/orders")).text()
    assert '<option value="orders-1">' in page and '<option value="orders-0">' not in page  # not the primary
    assert '<option value="orders-b1">' in page

    resp = await client.post("/ns/dev/db/orders/switchover", data={"csrf": console.csrf, "to": "orders-1"})
    assert resp.status == 200 and "Switchover of orders to orders-1 requested" in await resp.text()
    assert kube.find(kinds.CUSTOM["DatabaseCluster"], "dev", "orders")["spec"]["primary"] == "orders-1"
    resp = await client.post("/ns/dev/db/orders/switchover", data={"csrf": console.csrf, "to": "other-0"})
    assert resp.status == 400 and "other-0 is not a member of orders" in await resp.text()

    form = {"csrf": console.csrf, "backup": "orders-b1", "to": "orders-copy"}
    resp = await client.post("/ns/dev/db/orders/restore", data=form, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/ns/dev/db/orders-copy"
    copy = kube.find(kinds.CUSTOM["DatabaseCluster"], "dev", "orders-copy")
    assert copy is not None and copy["spec"]["restoreFrom"] == {"backup": "orders-b1"}
    assert copy["spec"]["replicas"] == 2 and copy["spec"]["storage"] == {"size": "3Gi"}
    resp = await client.post("/ns/dev/db/orders/restore", data={**form, "to": "Bad Name"})
    assert resp.status == 400 and "New database: &#x27;Bad Name&#x27; is not a name" in await resp.text()
