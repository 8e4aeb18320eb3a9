"""The console's pages (pure: data in, markup out; no I/O, no clock, no randomness).

Every value reaches the markup through ``markup.html()`` or ``markup.esc()``, which escape it unless it
is already ``Html`` (console/markup.py says why that makes injection impossible by construction).
Pages load only ``/static/console.css`` and ``/static/console.js`` (bundled; the server's Content
Security Policy forbids anything else, inline scripts included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubetrove.console.markup import (
    Html,
    csrf_field,
    data_table,
    db_url,
    html,
    join,
    layout,
    ns_url,
    phase,
)

SETTLED = ("Ready", "Failed")  # phases after which the list and detail pages stop refreshing
BACKUP_SETTLED = ("Completed", "Failed")
PRIVILEGES = ("readWrite", "read", "admin")
METHODS = ("auto", "logical", "physical")


def namespaces_page(namespaces: Sequence[str] | None, default: str, *, context: str) -> Html:
    """The namespaces to open; ``None`` when Kubernetes refused to list them (then the context's one)."""
    if namespaces is None:
        intro = html(
            "<p>Kubernetes does not let you list namespaces; your context's namespace is "
            '<a href="{href}">{ns}</a>. Open another one you may use:</p>',
            href=ns_url(default),
            ns=default,
        )
        items = Html("")
    else:
        intro = html("<p>Namespaces you can see ({n}):</p>", n=len(namespaces))
        items = html(
            '<ul class="namespaces" id="namespaces">{li}</ul>',
            li=join(
                html(
                    '<li><a href="{href}">{ns}</a>{mark}</li>',
                    href=ns_url(n),
                    ns=n,
                    mark=Html(' <span class="hint">(your context\'s)</span>') if n == default else "",
                )
                for n in namespaces
            ),
        )
    jump = Html(
        '<form class="inline" method="get" action="/ns"><label>Namespace '
        '<input name="ns" required pattern="[a-z0-9]([-a-z0-9]*[a-z0-9])?" maxlength="63"></label> '
        '<button type="submit">Open</button></form>'
    )
    return layout(
        "Namespaces",
        html("<h1>Namespaces</h1>{intro}{items}{jump}", intro=intro, items=items, jump=jump),
        context=context,
    )


def databases_page(
    namespace: str, rows: Sequence[Mapping[str, Any]], *, context: str, flash: str | None = None
) -> Html:
    """``kubectl trove list`` as a page: every instance and cluster of the namespace."""
    table = data_table(
        ("Name", "Kind", "Engine", "Version", "Phase", "Ready", "Primary", "Last backup", "Age", "Reason"),
        (
            (
                html('<a href="{h}">{n}</a>', h=db_url(namespace, r["name"]), n=r["name"]),
                r["kind"],
                r["engine"],
                r["version"],
                phase(r["phase"]),
                r["ready"],
                r["primary"],
                r["lastBackup"],
                r["age"],
                r["reason"],
            )
            for r in rows
        ),
        "databases",
        f"No databases in {namespace} yet.",
    )
    busy = any(r["phase"] not in SETTLED for r in rows)
    body = html(
        '<h1>Databases in {ns}</h1><p><a class="button" id="create" href="{new}">Create a database</a></p>'
        "{table}",
        ns=namespace,
        new=ns_url(namespace, "new"),
        table=table,
    )
    return layout(
        f"Databases in {namespace}",
        body,
        context=context,
        crumbs=_crumbs(namespace),
        flash=flash,
        refresh=5 if busy else None,
    )


def create_page(
    namespace: str,
    catalog: Sequence[Mapping[str, Any]],
    *,
    csrf: str,
    context: str,
    values: Mapping[str, str] | None = None,
    error: str | None = None,
) -> Html:
    """The create form: the engine and version come from a list of what the namespace may create (the
    catalog as its DatabasePolicies allow it: ``commands.namespace_catalog``), nothing else; the server
    checks the choice again (a hand-made POST gains nothing) and admission decides."""
    values = values or {}
    chosen = values.get("offering") or next(
        (offering(c["engine"], c["version"]) for c in catalog if c.get("default")), ""
    )
    options = join(
        html(
            '<option value="{v}"{sel}>{engine} {version}{d}</option>',
            v=offering(c["engine"], c["version"]),
            sel=Html(" selected") if offering(c["engine"], c["version"]) == chosen else "",
            engine=c["engine"],
            version=c["version"],
            d=_notes(c),
        )
        for c in catalog
    )
    privs = join(
        html(
            '<option value="{p}"{sel}>{p}</option>',
            p=p,
            sel=Html(" selected") if values.get("privilege") == p else "",
        )
        for p in PRIVILEGES
    )
    problem = html('<p class="error" id="form-error" role="alert">{e}</p>', e=error) if error else ""
    body = html(
        "<h1>Create a database in {ns}</h1>{problem}"
        '<form method="post" action="{action}" class="stacked" id="create-form">{csrf}'
        '<label>Name <input name="name" id="name" required maxlength="40" value="{name}"'
        ' pattern="[a-z]([-a-z0-9]*[a-z0-9])?" title="lower-case letters, digits and -"></label>'
        '<label>Engine and version <select name="offering" id="offering">{options}</select></label>'
        '<label>Members <input type="number" name="replicas" id="replicas" min="1" max="15"'
        ' value="{replicas}"> <span class="hint">1 is an instance; more is a replicated cluster</span>'
        "</label>"
        '<label>Storage per member <input name="storage" id="storage" placeholder="10Gi" value="{storage}">'
        "</label>"
        '<label>Database <input name="database" id="database" placeholder="orders" value="{database}">'
        "</label>"
        '<label>User <input name="user" id="user" placeholder="app" value="{user}"></label>'
        '<label>Privilege on the database <select name="privilege" id="privilege">{privs}</select></label>'
        '<p><button type="submit" id="submit">Create</button> <a href="{back}">Cancel</a></p></form>',
        ns=namespace,
        problem=problem,
        action=ns_url(namespace, "new"),
        csrf=csrf_field(csrf),
        name=values.get("name", ""),
        options=options,
        replicas=values.get("replicas", "1"),
        storage=values.get("storage", ""),
        database=values.get("database", ""),
        user=values.get("user", ""),
        privs=privs,
        back=ns_url(namespace),
    )
    return layout("Create a database", body, context=context, crumbs=_crumbs(namespace))


def _notes(row: Mapping[str, Any]) -> str:
    """' (default, evaluation)': the catalog's default, and a tier other than supported (DatabasePolicy)."""
    notes = ["default"] if row.get("default") else []
    if row.get("tier") not in (None, "", "-", "unknown", "supported"):
        notes.append(str(row["tier"]))
    return f" ({', '.join(notes)})" if notes else ""


def offering(engine: str, version: str) -> str:
    """The value of one choice of the create form's engine-and-version list."""
    return f"{engine}/{version}"


def detail_page(
    namespace: str,
    detail: Mapping[str, Any],
    *,
    csrf: str,
    context: str,
    readable: Sequence[str],
    flash: str | None = None,
) -> Html:
    """``kubectl trove get`` as a page, with the actions the user may try. ``readable``: the users whose
    Secret the user may read ("" for the administrator): only those are offered in "Show credentials"."""
    name = detail["name"]
    endpoints = data_table(
        ("Role", "Address"), sorted((detail.get("endpoints") or {}).items()), "endpoints", "No endpoints yet."
    )
    members = data_table(
        ("Pod", "Role", "Healthy", "Lag (s)", "Position"),
        (
            (m.get("pod"), m.get("role"), _yes(m.get("healthy")), m.get("lagSeconds"), m.get("position"))
            for m in detail.get("members") or []
        ),
        "members",
        "No member reports yet (an instance has one pod; a cluster reports its members once clustered).",
    )
    backups = data_table(
        ("Backup", "Phase"),
        ((b["name"], phase(b["phase"])) for b in detail.get("backups") or []),
        "backups",
        "No backups yet.",
    )
    verification = detail.get("lastVerification")
    verified = (
        data_table(
            ("Backup", "Result", "Time to restore (s)", "Tables", "Finished", "Why"),
            [
                (
                    verification["backup"],
                    phase(verification["phase"]),
                    verification.get("restoreSeconds"),
                    verification.get("tables"),
                    verification.get("completedAt"),
                    verification.get("message") or verification.get("reason"),
                )
            ],
            "verification",
            "",
        )
        if verification
        else html('<p class="empty" id="verification">No verified backup yet.</p>')
    )
    conditions = data_table(
        ("Type", "Status", "Reason", "Message"),
        (
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
            for c in detail.get("conditions") or []
        ),
        "conditions",
        "No conditions yet.",
    )
    events = data_table(
        ("Type", "Reason", "Note"),
        ((e.get("type"), e.get("reason"), e.get("note")) for e in detail.get("events") or []),
        "events",
        "No recent Events (or you may not read them).",
    )
    summary = html(
        '<dl class="summary"><dt>Kind</dt><dd id="kind">{kind}</dd><dt>Engine</dt><dd>{engine} {version}</dd>'
        '<dt>Ready members</dt><dd id="ready">{ready}</dd><dt>Primary</dt><dd id="primary">{primary}</dd>'
        "<dt>Age</dt><dd>{age}</dd><dt>Credentials Secret</dt><dd>{secret}</dd></dl>",
        kind=detail["kind"],
        engine=detail["engine"],
        version=detail["version"],
        ready=detail["ready"],
        primary=detail.get("primary") or "-",
        age=detail.get("age"),
        secret=detail.get("credentialsSecret") or "-",
    )
    reason = html(' <span class="reason">{r}</span>', r=detail["reason"]) if detail.get("reason") else ""
    busy = detail.get("phase") not in SETTLED or any(
        b["phase"] not in BACKUP_SETTLED for b in detail.get("backups") or []
    )
    body = html(
        "<h1>{name} {phase}{reason}</h1>{summary}"
        '<section class="actions"><h2>Actions</h2>{actions}</section>'
        "<h2>Endpoints</h2>{endpoints}<h2>Members</h2>{members}<h2>Backups</h2>{backups}"
        "<h2>Last verification</h2>{verified}<h2>Conditions</h2>{conditions}<h2>Recent Events</h2>{events}",
        name=name,
        phase=phase(detail.get("phase", ""), "phase"),
        reason=reason,
        summary=summary,
        actions=_actions(namespace, detail, csrf, readable),
        endpoints=endpoints,
        members=members,
        backups=backups,
        verified=verified,
        conditions=conditions,
        events=events,
    )
    return layout(
        name, body, context=context, crumbs=_crumbs(namespace, name), flash=flash, refresh=5 if busy else None
    )


def _actions(namespace: str, detail: Mapping[str, Any], csrf: str, readable: Sequence[str]) -> Html:
    name = detail["name"]
    token = csrf_field(csrf)
    parts = [
        html(
            '<form method="post" action="{a}" class="inline">{t}<label>Method <select name="method">{m}'
            '</select></label> <button type="submit" id="backup-now">Back up now</button></form>',
            a=db_url(namespace, name, "backup"),
            t=token,
            m=join(html('<option value="{v}">{v}</option>', v=v) for v in METHODS),
        )
    ]
    members = [m.get("pod") for m in detail.get("members") or [] if m.get("pod") != detail.get("primary")]
    if detail["kind"] == "DatabaseCluster" and members:
        parts.append(
            html(
                '<form method="post" action="{a}" class="inline">{t}<label>New primary <select name="to">{o}'
                '</select></label> <button type="submit" id="switchover">Switch over</button></form>',
                a=db_url(namespace, name, "switchover"),
                t=token,
                o=join(html('<option value="{p}">{p}</option>', p=p) for p in members),
            )
        )
    completed = [b["name"] for b in detail.get("backups") or [] if b["phase"] == "Completed"]
    if completed:
        parts.append(
            html(
                '<form method="post" action="{a}" class="inline">{t}<label>Restore <select name="backup">{o}'
                '</select></label> <label>into a NEW database <input name="to" required maxlength="40"'
                ' pattern="[a-z]([-a-z0-9]*[a-z0-9])?"></label> <button type="submit" id="restore">Restore'
                "</button></form>",
                a=db_url(namespace, name, "restore"),
                t=token,
                o=join(html('<option value="{b}">{b}</option>', b=b) for b in completed),
            )
        )
    if readable:
        options = join(
            html('<option value="{v}">{label}</option>', v=user, label=user or "administrator")
            for user in readable
        )
        parts.append(
            html(
                '<form method="post" action="{a}" class="inline">{t}<label>Credentials of <select name="user"'
                ' id="reveal-user">{o}</select></label> <button type="submit" id="reveal">Show</button>'
                "</form>",
                a=db_url(namespace, name, "credentials"),
                t=token,
                o=options,
            )
        )
    else:
        parts.append(
            html(
                '<p class="hint" id="no-reveal">Kubernetes lets you read neither Secret {s} nor a user\'s'
                " Secret, so the console cannot show credentials.</p>",
                s=detail.get("credentialsSecret") or "-",
            )
        )
    parts.append(
        html(
            '<p><a class="button danger" id="delete" href="{h}">Delete…</a></p>',
            h=db_url(namespace, name, "delete"),
        )
    )
    return join(parts)


def credentials_page(namespace: str, name: str, creds: Mapping[str, Any], *, context: str) -> Html:
    """What ``kubectl trove credentials`` prints (served with ``Cache-Control: no-store``)."""
    if "user" in creds:
        rows: list[tuple[Any, Any]] = [
            ("User", html('<code id="user">{u}</code>', u=creds["user"])),
            ("Password", html('<code id="password">{p}</code>', p=creds["password"])),
            ("From Secret", creds.get("secret")),
        ]
    else:  # an engine without an administrative login: the Secret's keys as they are
        rows = [(k, html("<code>{v}</code>", v=v)) for k, v in sorted((creds.get("keys") or {}).items())]
        rows.append(("From Secret", creds.get("secret")))
    rows += [(f"Endpoint ({k})", v) for k, v in sorted((creds.get("endpoints") or {}).items())]
    body = html(
        "<h1>Credentials of {name}</h1>{table}"
        '<p class="hint">Read from the Secret with your identity; not stored by the console.'
        ' <a href="{back}">Back</a></p>',
        name=name,
        table=data_table(("", ""), rows, "credentials", ""),
        back=db_url(namespace, name),
    )
    return layout(f"Credentials of {name}", body, context=context, crumbs=_crumbs(namespace, name))


def delete_page(
    namespace: str, name: str, kind: str, *, csrf: str, context: str, error: str | None = None
) -> Html:
    """Deleting asks for the name typed again (the button stays disabled until it matches)."""
    problem = html('<p class="error" id="form-error" role="alert">{e}</p>', e=error) if error else ""
    body = html(
        "<h1>Delete {kind} {name}</h1>{problem}"
        "<p>This deletes the database, its pods and its volumes. Backups (DatabaseBackup resources)"
        " stay, and a new database can be restored from them.</p>"
        '<form method="post" action="{a}" class="stacked">{t}'
        '<label>Type <b>{name}</b> to confirm <input name="confirm" id="confirm" autocomplete="off"'
        ' data-expect="{name}"></label>'
        '<p><button type="submit" class="danger" id="confirm-delete">Delete</button>'
        ' <a href="{back}">Cancel</a></p></form>',
        kind=kind,
        name=name,
        problem=problem,
        a=db_url(namespace, name, "delete"),
        t=csrf_field(csrf),
        back=db_url(namespace, name),
    )
    return layout(f"Delete {name}", body, context=context, crumbs=_crumbs(namespace, name))


def error_page(status: int, title: str, message: str, *, context: str) -> Html:
    """An error as a page: what happened, in the API server's (or our) words; never data."""
    body = html(
        '<h1 id="error-title">{status} {title}</h1><p class="error" id="error-message">{m}</p>'
        '<p><a href="/">Namespaces</a></p>',
        status=status,
        title=title,
        m=message,
    )
    return layout(f"{status} {title}", body, context=context)


def _crumbs(namespace: str, name: str | None = None) -> list[tuple[str, str]]:
    crumbs = [("Namespaces", "/"), (namespace, ns_url(namespace))]
    return [*crumbs, (name, db_url(namespace, name))] if name else crumbs


def _yes(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")
