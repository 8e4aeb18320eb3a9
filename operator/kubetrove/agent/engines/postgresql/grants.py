"""PostgreSQL portable grants that hold for every table and sequence, whoever creates it and whenever.

Manual: https://www.postgresql.org/docs/15/sql-grant.html, sql-alterdefaultprivileges.html,
sql-reassign-owned.html, ddl-priv.html.

A GRANT ``ON ALL TABLES IN SCHEMA public`` covers the tables that exist when it runs. Tables created
later get their privileges from the default privileges of the role that CREATES them: ``ALTER DEFAULT
PRIVILEGES IN SCHEMA public`` without ``FOR ROLE`` only covers the agent's own role, so a table the
application's user creates was invisible to a ``read`` user (issue 23). The mapping that holds:

- The database's ACL is the record of who holds which level (``read`` → CONNECT; ``readWrite`` →
  CONNECT, TEMPORARY; ``admin`` → CONNECT, TEMPORARY, CREATE): the grantees.
- The roles that can create in schema ``public`` (CREATE in its ACL: ``readWrite`` and ``admin``
  users), its owner and the agent's role: the creators.
- For every creator C and every other grantee G, ``ALTER DEFAULT PRIVILEGES FOR ROLE C IN SCHEMA
  public`` gives G exactly its level on TABLES and SEQUENCES. This matrix is recomputed from the
  catalog in every database on every PUT of any user, so a reader granted before the user who creates
  (or a second ``readWrite`` user granted after the first) is covered from then on; only the
  differences are executed, so a repeated PUT changes nothing.
- A role that loses the right to create in a database (``readWrite`` → ``read``, or revoked) gives what
  it owns there to the agent's role (``REASSIGN OWNED``): an owner may always write its own tables,
  whatever was revoked, and on the other engines a downgraded user writes nothing. Its default
  privileges as a creator are revoked too.
- Revoking a user's level removes its grants on existing objects and every default privilege naming it.

Only schema ``public`` is managed: schemas an ``admin`` user creates are its own to grant (documented
in docs/agent-api.md). Superusers other than the agent's role are neither creators nor grantees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from psycopg import sql

from kubetrove.agent.protocol import Grant, Privilege

# Per object class: (every privilege we manage, what each portable level grants; None = ALL).
_Levels = Mapping[Privilege, tuple[str, ...] | None]
OBJECTS: tuple[tuple[str, str, tuple[str, ...], _Levels], ...] = (
    ("DATABASE", "{db}", ("CONNECT", "TEMPORARY", "CREATE"),
     {Privilege.READ: ("CONNECT",), Privilege.READ_WRITE: ("CONNECT", "TEMPORARY"), Privilege.ADMIN: None}),
    ("SCHEMA", "public", ("USAGE", "CREATE"),
     {Privilege.READ: ("USAGE",), Privilege.READ_WRITE: ("USAGE", "CREATE"), Privilege.ADMIN: None}),
    ("TABLES", "ALL TABLES IN SCHEMA public",
     ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"),
     {Privilege.READ: ("SELECT",), Privilege.READ_WRITE: ("SELECT", "INSERT", "UPDATE", "DELETE"),
      Privilege.ADMIN: None}),
    ("SEQUENCES", "ALL SEQUENCES IN SCHEMA public", ("USAGE", "SELECT", "UPDATE"),
     {Privilege.READ: ("SELECT",), Privilege.READ_WRITE: ("USAGE", "SELECT"), Privilege.ADMIN: None}),
)  # fmt: skip
LEVEL = {Privilege.READ: 1, Privilege.READ_WRITE: 2, Privilege.ADMIN: 3}
CREATOR_LEVELS = frozenset({Privilege.READ_WRITE, Privilege.ADMIN})  # CREATE on schema public
# pg_default_acl.defaclobjtype of the object classes whose default privileges are managed.
DEFAULT_KINDS = {"TABLES": "r", "SEQUENCES": "S"}
_BY_KIND = {kind: (universe, levels) for kind, _, universe, levels in OBJECTS}

# Who holds which level: the database's own ACL (superusers need no grant and are left out).
GRANTEES = (
    "SELECT r.rolname AS role, array_agg(a.privilege_type) AS privileges FROM pg_database d"
    " CROSS JOIN LATERAL aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE d.datname = current_database() AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%'"
    " GROUP BY r.rolname"
)
# Who may create in schema public besides its owner: CREATE in its ACL (not through PUBLIC: the agent
# revokes that, as PostgreSQL 15 does by default).
CREATORS = (
    "SELECT r.rolname AS role FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a"
    " JOIN pg_roles r ON r.oid = a.grantee WHERE n.nspname = 'public' AND a.privilege_type = 'CREATE'"
    " AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%'"
)
# The owner of schema public (PostgreSQL 15: pg_database_owner, i.e. the database's owner), the
# database's owner, and the agent's own role: they create without a grant.
OWNERS = (
    "SELECT pg_get_userbyid(n.nspowner) AS schema_owner, pg_get_userbyid(d.datdba) AS db_owner,"
    " current_user AS agent FROM pg_namespace n, pg_database d"
    " WHERE n.nspname = 'public' AND d.datname = current_database()"
)
DEFAULT_ACL = (
    "SELECT pg_get_userbyid(d.defaclrole) AS creator, d.defaclobjtype AS kind, r.rolname AS grantee,"
    " array_agg(a.privilege_type) AS privileges FROM pg_default_acl d"
    " CROSS JOIN LATERAL aclexplode(d.defaclacl) a JOIN pg_roles r ON r.oid = a.grantee"
    " WHERE d.defaclnamespace = 'public'::regnamespace AND d.defaclobjtype IN ('r', 'S')"
    " AND NOT r.rolsuper AND r.rolname NOT LIKE 'pg\\_%' GROUP BY 1, 2, 3"
)

# (creator, object class "TABLES" | "SEQUENCES", grantee)
DefaultKey = tuple[str, str, str]


def wanted_levels(grants: list[Grant]) -> dict[str, Privilege]:
    """The highest portable privilege wanted per database."""
    levels: dict[str, Privilege] = {}
    for grant in grants:
        for privilege in grant.privileges:
            if grant.database not in levels or LEVEL[privilege] > LEVEL[levels[grant.database]]:
                levels[grant.database] = privilege
    return levels


def level_of(database_privileges: Iterable[str]) -> Privilege | None:
    """The portable level a role holds, read back from its privileges on the database."""
    held = set(database_privileges)
    if "CREATE" in held:
        return Privilege.ADMIN
    if "TEMPORARY" in held:
        return Privilege.READ_WRITE
    return Privilege.READ if "CONNECT" in held else None


def grant_statements(role: str, database: str, level: Privilege | None) -> list[sql.Composed]:
    """The GRANTs, then the REVOKEs, that leave ``role`` with exactly ``level`` on what exists now."""
    grants: list[sql.Composed] = []
    revokes: list[sql.Composed] = []
    who = sql.Identifier(role)
    for kind, target, universe, levels in OBJECTS:
        wanted = levels[level] if level is not None else ()
        on = sql.Identifier(database) if kind == "DATABASE" else sql.SQL(target)
        prefix = sql.SQL(f"{kind} " if kind in ("DATABASE", "SCHEMA") else "")
        extra = () if wanted is None else tuple(p for p in universe if p not in wanted)
        if wanted is None or wanted:
            privs = sql.SQL("ALL" if wanted is None else ", ".join(wanted))
            grants.append(sql.SQL("GRANT {} ON {}{} TO {}").format(privs, prefix, on, who))
        if extra:
            privs = sql.SQL(", ".join(extra))
            revokes.append(sql.SQL("REVOKE {} ON {}{} FROM {}").format(privs, prefix, on, who))
    return grants + revokes


def wanted_defaults(
    creators: Iterable[str], levels: Mapping[str, Privilege]
) -> dict[DefaultKey, frozenset[str]]:
    """For every creator and every OTHER grantee: the grantee's level on tables and sequences."""
    out: dict[DefaultKey, frozenset[str]] = {}
    for creator in creators:
        for kind in DEFAULT_KINDS:
            universe, by_level = _BY_KIND[kind]
            for grantee, level in levels.items():
                if grantee != creator:
                    out[(creator, kind, grantee)] = frozenset(by_level[level] or universe)
    return out


def default_statements(
    creators: Iterable[str], levels: Mapping[str, Privilege], current: Mapping[DefaultKey, frozenset[str]]
) -> list[sql.Composed]:
    """The ALTER DEFAULT PRIVILEGES statements (GRANTs first, then REVOKEs) that turn ``current`` into
    exactly what ``levels`` ask for, for objects each of ``creators`` creates in schema public.

    Entries of roles that no longer create, or of grantees that no longer hold a level, are revoked.
    Nothing is emitted when they already match. Privileges beyond those managed (MAINTAIN, new in
    PostgreSQL 17, comes with ALL) are left to ``admin`` grantees and revoked from the others.
    """
    wanted = wanted_defaults(creators, levels)
    grants: list[sql.Composed] = []
    revokes: list[sql.Composed] = []
    for key in sorted(set(wanted) | set(current)):
        creator, kind, grantee = key
        if creator == grantee:
            continue  # an owner's own privileges are not ours to manage
        want, have = wanted.get(key, frozenset()), current.get(key, frozenset())
        universe, _ = _BY_KIND[kind]
        alter = sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public ").format(
            sql.Identifier(creator)
        )
        who, on = sql.Identifier(grantee), sql.SQL(kind)
        if want - have:
            privs = (
                "ALL" if want == frozenset(universe) else ", ".join(p for p in universe if p in want - have)
            )
            grants.append(alter + sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privs), on, who))
        extra = set() if want == frozenset(universe) else have - want
        if extra:
            privs = "ALL" if not want else ", ".join(sorted(extra))
            revokes.append(alter + sql.SQL("REVOKE {} ON {} FROM {}").format(sql.SQL(privs), on, who))
    return grants + revokes


def level_of_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, Privilege]:
    """role -> level, from GRANTEES rows (roles holding no level are left out)."""
    levels = {row["role"]: level_of(row["privileges"]) for row in rows}
    return {role: level for role, level in levels.items() if level is not None}


def creators_of(creator_rows: Iterable[Mapping[str, Any]], owners: Mapping[str, Any]) -> set[str]:
    """The roles whose new tables need default privileges: CREATE on public, the owners, the agent."""
    creators = {row["role"] for row in creator_rows} | {owners["db_owner"], owners["agent"]}
    # PostgreSQL 15 makes schema public belong to pg_database_owner, which stands for the database owner.
    if owners["schema_owner"] != "pg_database_owner":
        creators.add(owners["schema_owner"])
    return creators


def current_defaults(rows: Iterable[Mapping[str, Any]]) -> dict[DefaultKey, frozenset[str]]:
    """The managed default privileges as they are, from DEFAULT_ACL rows."""
    kinds = {code: kind for kind, code in DEFAULT_KINDS.items()}
    return {(r["creator"], kinds[r["kind"]], r["grantee"]): frozenset(r["privileges"]) for r in rows}
