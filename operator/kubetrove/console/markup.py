"""The console's markup kit (pure): escaping by default, URLs, the page layout, tables and phase badges.

Escaping is the default, not a habit: every value reaches the markup through ``html()`` or ``esc()``,
which escape it unless it is already ``Html`` (markup built here or in ``pages``). A name, a condition
message or an Event note from the API server can therefore never become markup, whatever it contains.
"""

from __future__ import annotations

import html as _html
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode


class Html(str):
    """Markup that is already safe (built here); anything else is escaped on the way in."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as text in HTML (attributes included); ``Html`` passes unchanged, None is empty."""
    if isinstance(value, Html):
        return value
    return Html(_html.escape("" if value is None else str(value), quote=True))


def html(template: str, **values: Any) -> Html:
    """``template`` (trusted markup with ``{name}`` fields) with every value escaped."""
    return Html(template.format(**{k: esc(v) for k, v in values.items()}))


def join(parts: Iterable[Html], sep: str = "") -> Html:
    """Markup fragments one after the other (each already Html)."""
    return Html(sep.join(esc(p) for p in parts))


def url(*segments: str, **query: str) -> str:
    """A path on the console: each segment percent-encoded (a name can hold no ``/`` or ``?``)."""
    path = "/" + "/".join(quote(str(s), safe="") for s in segments)
    return f"{path}?{urlencode(query)}" if query else path


def ns_url(namespace: str, *rest: str) -> str:
    return url("ns", namespace, *rest)


def db_url(namespace: str, name: str, *rest: str) -> str:
    return url("ns", namespace, "db", name, *rest)


def csrf_field(token: str) -> Html:
    """The hidden field every POST form carries (the server refuses a POST without it)."""
    return html('<input type="hidden" name="csrf" value="{token}">', token=token)


def layout(
    title: str,
    body: Html,
    *,
    context: str,
    crumbs: Sequence[tuple[str, str]] = (),
    flash: str | None = None,
    refresh: int | None = None,
) -> Html:
    """A whole page: header (where you are, as whom), an optional message, the body."""
    nav = join(html('<a href="{href}">{label}</a>', href=href, label=label) for label, href in crumbs)
    note = html('<p class="flash" role="status">{m}</p>', m=flash) if flash else Html("")
    return html(
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>{title} · kubetrove</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script></head>\n'
        '<body data-refresh="{refresh}">'
        '<header><a class="brand" href="/">kubetrove</a><nav class="crumbs">{nav}</nav>'
        '<span class="who">context <b>{context}</b> &middot; acting as you</span></header>\n'
        "<main>{note}{body}</main>\n"
        "<footer>Every page and action is a request to the Kubernetes API with your kubeconfig: "
        "Kubernetes RBAC decides what you see and do.</footer></body></html>\n",
        title=title,
        refresh=refresh or "",
        nav=nav,
        context=context,
        note=note,
        body=body,
    )


def data_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], id_: str, empty: str) -> Html:
    rows = list(rows)
    if not rows:
        return html('<p class="empty" id="{id}">{empty}</p>', id=id_, empty=empty)
    head = join(html("<th>{h}</th>", h=h) for h in headers)
    body = join(html("<tr>{cells}</tr>", cells=join(html("<td>{c}</td>", c=c) for c in row)) for row in rows)
    return html(
        '<table id="{id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>',
        id=id_,
        head=head,
        body=body,
    )


def phase(value: str, id_: str | None = None) -> Html:
    """A phase as a coloured badge (``id="phase"`` on the detail page, for people and tests)."""
    ident = html(' id="{i}"', i=id_) if id_ else Html("")
    return html(
        '<span class="phase phase-{cls}"{ident}>{value}</span>',
        cls=value or "Unknown",
        ident=ident,
        value=value or "Pending",
    )


# -- pages --------------------------------------------------------------------------------------------
