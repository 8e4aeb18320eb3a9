"""The console's web server (aiohttp), run by ``kubectl trove console`` on the user's machine.

Whom it acts as: the user. It holds one Kubernetes client built from the user's kubeconfig (as
``kubectl proxy`` does) and calls ``kubetrove.cli.commands``, the functions behind ``kubectl trove``;
it has no ServiceAccount, no impersonation right and no cache, so each page shows exactly what the
API server lets the user read at that moment, and a refusal (403) is shown as a refusal, never data.

Who may use it: whoever holds the token printed with its URL. Other local users and web pages can
reach 127.0.0.1 too, so:
- the token (``/login?token=...``) is exchanged for a session cookie (HttpOnly, SameSite=Strict, a
  name unique to this server); every page but ``/login`` and ``/static/`` needs that cookie (401);
- every POST carries a CSRF field (403 without it), and a cross-site Origin is refused;
- bound to a loopback address, only a Host header naming that address is served (DNS rebinding);
- a Content Security Policy allows only the bundled ``/static/`` assets; pages are not cached.
Errors become pages in ONE middleware (``errors``): no handler formats a failure itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from kubetrove.cli import commands
from kubetrove.cli.commands import CliError, Ctx, Missing
from kubetrove.console import forms, markup, pages
from kubetrove.k8s import kinds
from kubetrove.k8s.errors import ApiError, Conflict, Invalid
from kubetrove.k8s.kubeconfig import KubeconfigError
from kubetrove.k8s.port import Kube
from kubetrove.render.names import ChildNames

STATIC = Path(__file__).parent / "static"
LOG = logging.getLogger("kubetrove.console")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the login URL's token never leaves in a Referer
}


def _token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Console:
    """One console server: the user's client and this server's secrets."""

    kube: Kube
    namespace: str  # the kubeconfig context's namespace
    context: str
    token: str = field(default_factory=_token)  # printed in the login URL
    session: str = field(default_factory=_token)  # the cookie's value once logged in
    csrf: str = field(default_factory=_token)  # in every form
    hosts: frozenset[str] | None = None  # Host headers served (None: any; set when bound to loopback)
    flash: str | None = None  # one message for the next page (a single user's server)

    @property
    def cookie(self) -> str:
        """Cookies ignore ports: two consoles on one host must not share (or clobber) a name."""
        return "kubetrove-console-" + hashlib.sha256(self.session.encode()).hexdigest()[:12]

    def ctx(self, namespace: str) -> Ctx:
        return Ctx(self.kube, namespace)

    def take_flash(self) -> str | None:
        message, self.flash = self.flash, None
        return message


CONSOLE = web.AppKey("console", Console)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _page(console: Console, body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _error(console: Console, status: int, title: str, message: str) -> web.Response:
    return _page(console, pages.error_page(status, title, message, context=console.context), status)


def _see_other(location: str) -> web.Response:
    """After a POST: the browser GETs ``location`` (a reload does not repeat the action)."""
    return web.Response(status=303, headers={"Location": location})


# -- middlewares ---------------------------------------------------------------------------------------


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The ONE place a failure becomes a page: the API server's refusal in its own words, never data."""
    console = request.app[CONSOLE]
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(console, exc.status, exc.reason, f"{request.method} {request.path}: {exc.reason}")
    except Missing as exc:
        return _error(console, 404, "Not found", str(exc))
    except (CliError, forms.FormError) as exc:
        return _error(console, 400, "Cannot do that", str(exc))
    except ApiError as exc:
        said = exc.message or exc.reason
        if exc.status == 403:
            return _error(
                console,
                403,
                "Refused by Kubernetes",
                f"Kubernetes refused this request for your identity: {said}. Nothing was shown or changed.",
            )
        if exc.status == 401:
            return _error(
                console,
                401,
                "Kubernetes did not accept your credentials",
                f"{said} (renew the kubeconfig's credentials and restart the console)",
            )
        status = exc.status if 400 <= exc.status < 600 else 502
        return _error(console, status, exc.reason or "Refused", said)
    except KubeconfigError as exc:
        return _error(console, 500, "Kubeconfig", str(exc))
    except Exception as exc:  # a bug or an unreachable API server: logged here, a page for the user
        LOG.exception("%s %s failed", request.method, request.path)
        return _error(console, 502, "The request failed", f"{type(exc).__name__}: {exc}")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host check, login cookie, CSRF field (see the module docstring)."""
    console = request.app[CONSOLE]
    if console.hosts is not None and request.host not in console.hosts:
        return _error(
            console,
            421,
            "Misdirected request",
            f"this console answers only to {', '.join(sorted(console.hosts))}",
        )
    if request.path.startswith("/static/") or request.path == "/login":
        return await handler(request)
    if not _same(request.cookies.get(console.cookie, ""), console.session):
        return _error(
            console,
            401,
            "Not logged in",
            "Open the URL that `kubectl trove console` printed (it carries a one-time token).",
        )
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if (
            origin
            and origin != "null"
            and console.hosts is not None
            and urlsplit(origin).netloc not in console.hosts
        ):
            return _error(console, 403, "Cross-site request refused", f"a form from {origin} cannot act here")
        form = await request.post()
        if not _same(str(form.get("csrf", "")), console.csrf):
            return _error(
                console,
                403,
                "Form token missing or wrong",
                "This form did not come from this console; reload the page and try again.",
            )
    return await handler(request)


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(HEADERS)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"  # pages may hold credentials


# -- handlers --------------------------------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if not _same(request.query.get("token", ""), console.token):
        return _error(
            console,
            401,
            "Wrong token",
            "This link's token is not this console's; use the URL `kubectl trove console` printed.",
        )
    response = _see_other("/")
    response.set_cookie(console.cookie, console.session, httponly=True, samesite="Strict", path="/")
    return response


async def namespaces(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    try:
        names: list[str] | None = sorted(
            n["metadata"]["name"] for n in await console.kube.list(kinds.NAMESPACE, None)
        )
    except ApiError as exc:
        if exc.status != 403:
            raise
        names = None  # may not list namespaces: offer the context's
    return _page(console, pages.namespaces_page(names, console.namespace, context=console.context))


async def open_namespace(request: web.Request) -> web.StreamResponse:
    name = request.query.get("ns", "").strip()
    if not forms.NAME.fullmatch(name):
        raise forms.FormError(f"{name!r} is not a namespace name")
    return _see_other(markup.ns_url(name))


async def databases(request: web.Request) -> web.StreamResponse:
    console, ns = request.app[CONSOLE], request.match_info["ns"]
    rows = await commands.list_databases(console.ctx(ns))
    return _page(console, pages.databases_page(ns, rows, context=console.context, flash=console.take_flash()))


async def new_form(request: web.Request) -> web.StreamResponse:
    console, ns = request.app[CONSOLE], request.match_info["ns"]
    offer = await commands.namespace_catalog(console.ctx(ns))
    return _page(console, pages.create_page(ns, offer, csrf=console.csrf, context=console.context))


async def create(request: web.Request) -> web.StreamResponse:
    console, ns = request.app[CONSOLE], request.match_info["ns"]
    fields = await _fields(request)
    ctx = console.ctx(ns)
    offer = await commands.namespace_catalog(ctx)
    try:
        wanted = forms.create_request(fields, ns)
        commands.check_catalog(wanted.engine, wanted.version)
        if (wanted.engine, wanted.version) not in {(c["engine"], c["version"]) for c in offer}:
            # The policies' view is advice (admission decides); the form did not offer it, so refuse it.
            raise forms.FormError(
                f"{wanted.engine} {wanted.version} is not offered in {ns} (kubectl trove -n {ns} catalog)"
            )
        made = await commands.create(ctx, wanted)
    except (forms.FormError, Conflict, Invalid, CliError) as exc:
        status = exc.status if isinstance(exc, ApiError) else 400
        message = (exc.message or str(exc)) if isinstance(exc, ApiError) else str(exc)
        page = pages.create_page(
            ns, offer, csrf=console.csrf, context=console.context, values=fields, error=message
        )
        return _page(console, page, status)
    console.flash = f"{made['kind']}/{made['metadata']['name']} created; the operator is creating it."
    return _see_other(markup.db_url(ns, made["metadata"]["name"]))


async def detail(request: web.Request) -> web.StreamResponse:
    console, ns, name = request.app[CONSOLE], request.match_info["ns"], request.match_info["name"]
    ctx = console.ctx(ns)
    shown = await commands.get_database(ctx, name)
    # Whose credentials to offer: the administrator's ("") and each spec.users entry's, where the API
    # server says the user may read that Secret (the reading itself is judged again).
    secrets_of = {"": shown.get("credentialsSecret") or ChildNames(name).credentials_secret}
    secrets_of |= {str(u["name"]): str(u["secret"]) for u in shown.get("users") or []}
    allowed = await asyncio.gather(*(_may(ctx, "get", "secrets", s) for s in secrets_of.values()))
    page = pages.detail_page(
        ns,
        shown,
        csrf=console.csrf,
        context=console.context,
        readable=[user for user, ok in zip(secrets_of, allowed, strict=True) if ok],
        flash=console.take_flash(),
    )
    return _page(console, page)


async def _may(ctx: Ctx, verb: str, resource: str, name: str) -> bool:
    """Ask the API server; a refused question counts as no (the action itself is checked anyway)."""
    try:
        return await commands.may(ctx, verb, resource, name)
    except ApiError:
        return False


async def backup(request: web.Request) -> web.StreamResponse:
    console, ns, name = request.app[CONSOLE], request.match_info["ns"], request.match_info["name"]
    method = (await _fields(request)).get("method", "auto")
    if method not in pages.METHODS:
        raise forms.FormError(f"Method: {method!r} is not one of {', '.join(pages.METHODS)}")
    made = await commands.backup_now(console.ctx(ns), name, None, method)
    console.flash = f"DatabaseBackup/{made['metadata']['name']} created."
    return _see_other(markup.db_url(ns, name))


async def switchover(request: web.Request) -> web.StreamResponse:
    console, ns, name = request.app[CONSOLE], request.match_info["ns"], request.match_info["name"]
    pod = (await _fields(request)).get("to", "")
    await commands.switchover(console.ctx(ns), name, pod)
    console.flash = f"Switchover of {name} to {pod} requested; the primary changes once it is safe."
    return _see_other(markup.db_url(ns, name))


async def restore(request: web.Request) -> web.StreamResponse:
    console, ns = request.app[CONSOLE], request.match_info["ns"]
    fields = await _fields(request)
    to = forms.name_field(fields, "to", "New database")
    made = await commands.restore(console.ctx(ns), fields.get("backup", ""), to, None, False)
    console.flash = f"{made['kind']}/{to} created from DatabaseBackup/{fields.get('backup')}."
    return _see_other(markup.db_url(ns, to))


async def credentials(request: web.Request) -> web.StreamResponse:
    console, ns, name = request.app[CONSOLE], request.match_info["ns"], request.match_info["name"]
    user = (await _fields(request)).get("user") or None  # None: the administrator
    creds = await commands.credentials(console.ctx(ns), name, user)
    return _page(console, pages.credentials_page(ns, name, creds, context=console.context))


async def delete_form(request: web.Request) -> web.StreamResponse:
    console, ns, name = request.app[CONSOLE], request.match_info["ns"], request.match_info["name"]
    obj = await commands.find(console.ctx(ns), name)
    return _page(
        console, pages.delete_page(ns, name, obj["kind"], csrf=console.csrf, context=console.context)
    )


async def delete(request: web.Request) -> web.StreamResponse:
    console, ns, name = request.app[CONSOLE], request.match_info["ns"], request.match_info["name"]
    ctx = console.ctx(ns)
    if (await _fields(request)).get("confirm", "") != name:
        obj = await commands.find(ctx, name)
        page = pages.delete_page(
            ns,
            name,
            obj["kind"],
            csrf=console.csrf,
            context=console.context,
            error=f"Type {name} exactly to delete it; nothing was deleted.",
        )
        return _page(console, page, 400)
    gone = await commands.delete(ctx, name)
    console.flash = f"{gone['kind']}/{name} is being deleted."
    return _see_other(markup.ns_url(ns))


async def _fields(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


# -- the server ------------------------------------------------------------------------------------------


def make_app(console: Console) -> web.Application:
    """The application (tests build it around their own ``Console``)."""
    app = web.Application(middlewares=[errors, guard], client_max_size=64 * 1024)
    app[CONSOLE] = console
    app.on_response_prepare.append(_headers)
    route = app.router
    route.add_get("/login", login)
    route.add_get("/", namespaces)
    route.add_get("/ns", open_namespace)
    route.add_get("/ns/{ns}", databases)
    route.add_get("/ns/{ns}/new", new_form)
    route.add_post("/ns/{ns}/new", create)
    route.add_get("/ns/{ns}/db/{name}", detail)
    route.add_post("/ns/{ns}/db/{name}/backup", backup)
    route.add_post("/ns/{ns}/db/{name}/switchover", switchover)
    route.add_post("/ns/{ns}/db/{name}/restore", restore)
    route.add_post("/ns/{ns}/db/{name}/credentials", credentials)
    route.add_get("/ns/{ns}/db/{name}/delete", delete_form)
    route.add_post("/ns/{ns}/db/{name}/delete", delete)
    route.add_static("/static/", STATIC)
    return app


def loopback(address: str) -> bool:
    """Whether ``address`` is reachable from this machine only."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


async def serve(console: Console, address: str, port: int, announce: Callable[[str], Any]) -> None:
    """Serve until cancelled (Ctrl-C); ``announce`` gets the login URL once listening."""
    runner = web.AppRunner(make_app(console), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, address, port)
        await site.start()
        bound = int(runner.addresses[0][1])
        host = f"[{address}]" if ":" in address else address
        if loopback(address):
            console.hosts = frozenset({f"{host}:{bound}", f"localhost:{bound}"})
        announce(f"http://{host}:{bound}/login?token={console.token}")
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
