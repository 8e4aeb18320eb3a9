"""The console's pages and forms (pure): everything from the API server is escaped, forms offer only
the catalog, and every POST form carries the CSRF field."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from kubetrove.cli import commands
from kubetrove.console import forms, markup, pages

EVIL = '<script>alert("x")</script>'
CSRF = "csrf-token-123"


def detail(**over: Any) -> dict[str, Any]:
    base = {
        "name": "orders", "namespace": "dev", "kind": "DatabaseCluster", "engine": "mariadb",
        "version": "10.11", "phase": "Ready", "ready": "3/3", "reason": "", "primary": "orders-0",
        "lastBackup": "", "age": "5m", "endpoints": {"readWrite": "orders-rw.dev.svc:3306"},
        "credentialsSecret": "orders-credentials",
        "users": [{"name": "app", "secret": "orders-user-app"}],
        "members": [
            {"pod": "orders-0", "role": "primary", "healthy": True, "lagSeconds": None},
            {"pod": "orders-1", "role": "replica", "healthy": True, "lagSeconds": 0.5},
        ],
        "conditions": [{"type": "Ready", "status": "True", "reason": "AllMembersReady", "message": EVIL}],
        "lastVerification": None,
        "backups": [{"name": "orders-1", "phase": "Completed"}, {"name": "orders-2", "phase": "Running"}],
        "events": [{"type": "Warning", "reason": "Odd", "note": EVIL}],
    }  # fmt: skip
    return {**base, **over}


class Forms(HTMLParser):
    """Every <form> with its method and fields, and every element id (a well-formedness check too)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "form":
            self.forms.append({"method": a.get("method"), "action": a.get("action"), "fields": {}})
        elif tag in ("input", "select") and self.forms:
            self.forms[-1]["fields"][a.get("name")] = a.get("value")
        elif tag == "script":
            self.scripts.append(a)


def parse(page: str) -> Forms:
    p = Forms()
    p.feed(page)
    return p


def test_values_from_the_api_server_are_escaped_everywhere() -> None:
    page = pages.detail_page("dev", detail(name=EVIL, reason=EVIL), csrf=CSRF, context=EVIL, readable=[""])
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    # the only script is the bundled one, loaded by URL (the CSP forbids inline scripts)
    assert parse(page).scripts == [{"src": "/static/console.js", "defer": None}]
    rows = [{**pages_row(), "name": EVIL, "reason": EVIL}]
    assert "<script>alert" not in pages.databases_page("dev", rows, context="c", flash=EVIL)
    assert "<script>alert" not in pages.error_page(403, "Refused", EVIL, context="c")
    creds = {"user": EVIL, "password": EVIL, "secret": "s", "endpoints": {"readWrite": EVIL}}
    assert "<script>alert" not in pages.credentials_page("dev", "orders", creds, context="c")


def test_a_name_cannot_break_out_of_an_attribute_or_a_url() -> None:
    page = pages.databases_page("dev", [{**pages_row(), "name": 'x" onclick="bad'}], context="c")
    assert 'onclick="bad' not in page
    assert markup.db_url("d/ev", "a?b") == "/ns/d%2Fev/db/a%3Fb"


def pages_row() -> dict[str, Any]:
    return {
        "name": "orders", "kind": "DatabaseInstance", "engine": "postgresql", "version": "16",
        "phase": "Ready", "ready": "1/1", "primary": "", "lastBackup": "", "age": "1m", "reason": "",
    }  # fmt: skip


def test_every_post_form_carries_the_csrf_field() -> None:
    seen = 0
    for page in (
        pages.detail_page("dev", detail(), csrf=CSRF, context="c", readable=[""]),
        pages.create_page("dev", commands.catalog(), csrf=CSRF, context="c"),
        pages.delete_page("dev", "orders", "DatabaseCluster", csrf=CSRF, context="c"),
    ):
        for form in parse(page).forms:
            if form["method"] == "post":
                seen += 1
                assert form["fields"].get("csrf") == CSRF, form
    assert seen == 6  # backup, switchover, restore, reveal; create; delete


def test_the_detail_page_offers_what_applies() -> None:
    page = parse(pages.detail_page("dev", detail(), csrf=CSRF, context="c", readable=[""]))
    assert {"phase", "members", "endpoints", "backups", "conditions", "events", "reveal"} <= set(page.ids)
    actions = {f["action"] for f in page.forms}
    assert actions == {f"/ns/dev/db/orders/{a}" for a in ("backup", "switchover", "restore", "credentials")}
    # an instance has no switchover; a user who may not read the Secret gets a sentence, not a button;
    # without a Completed backup there is nothing to restore from
    instance = detail(kind="DatabaseInstance", members=[], backups=[{"name": "b", "phase": "Running"}])
    page = parse(pages.detail_page("dev", instance, csrf=CSRF, context="c", readable=[]))
    assert {f["action"] for f in page.forms} == {"/ns/dev/db/orders/backup"}
    assert "reveal" not in page.ids and "no-reveal" in page.ids


def test_credentials_are_offered_for_the_readable_secrets_only() -> None:
    page = pages.detail_page("dev", detail(), csrf=CSRF, context="c", readable=["", "app"])
    assert '<option value="">administrator</option><option value="app">app</option>' in page
    page = pages.detail_page("dev", detail(), csrf=CSRF, context="c", readable=["app"])
    assert '<select name="user" id="reveal-user"><option value="app">app</option></select>' in page


def test_the_phase_is_in_its_span_and_busy_pages_refresh() -> None:
    ready = pages.detail_page("dev", detail(backups=[]), csrf=CSRF, context="c", readable=[""])
    assert re.search(r'<span class="phase phase-Ready" id="phase">Ready</span>', ready)
    assert 'data-refresh=""' in ready
    creating = pages.detail_page("dev", detail(phase="Creating"), csrf=CSRF, context="c", readable=[""])
    assert 'data-refresh="5"' in creating


def test_the_create_form_offers_only_the_catalog() -> None:
    catalog = commands.catalog()
    page = pages.create_page("dev", catalog, csrf=CSRF, context="c")
    offered = re.findall(r'<option value="([^"]+)"', page.split('name="offering"')[1].split("</select>")[0])
    assert offered == [pages.offering(c["engine"], c["version"]) for c in catalog]
    default = next(c for c in catalog if c["default"])
    assert f'value="{pages.offering(default["engine"], default["version"])}" selected' in page


def test_a_refused_create_keeps_what_was_typed_escaped() -> None:
    page = pages.create_page(
        "dev", commands.catalog(), csrf=CSRF, context="c", values={"name": EVIL}, error=EVIL
    )
    assert "<script>alert" not in page and 'id="form-error"' in page


def test_the_create_form_reads_into_the_cli_s_request() -> None:
    req = forms.create_request(
        {"name": "shop", "offering": "mariadb/10.11", "replicas": "3", "storage": "2Gi",
         "database": "orders", "user": "app", "privilege": "read"},
        "dev",
    )  # fmt: skip
    assert (req.engine, req.version, req.replicas, req.storage) == ("mariadb", "10.11", 3, "2Gi")
    assert req.users == (("app", "orders", "read"),) and req.databases == ("orders",)
    single = forms.create_request({"name": "one", "offering": "postgresql/16"}, "dev")
    assert single.replicas is None and single.users == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad_Name", "offering": "mariadb/10.11"}, "Name: 'Bad_Name' is not a name"),
        ({"name": "ok", "offering": "mariadb"}, "Engine and version"),
        ({"name": "ok", "offering": "mariadb/10.11", "replicas": "16"}, "Members: '16'"),
        ({"name": "ok", "offering": "mariadb/10.11", "replicas": "x"}, "Members: 'x'"),
        ({"name": "ok", "offering": "mariadb/10.11", "user": "a b"}, "User: 'a b'"),
        ({"name": "ok", "offering": "mariadb/10.11", "privilege": "root"}, "Privilege: 'root'"),
    ],
)
def test_bad_fields_are_named(fields: dict[str, str], message: str) -> None:
    with pytest.raises(forms.FormError, match=re.escape(message)):
        forms.create_request(fields, "dev")


def test_a_version_outside_the_catalog_is_refused_by_the_shared_check() -> None:
    with pytest.raises(commands.CliError, match=re.escape("mariadb 0.1 is not in the catalog")):
        commands.check_catalog("mariadb", "0.1")
