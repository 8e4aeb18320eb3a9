"""Cassandra's permissions as CQL: portable grants mapped to keyspace permissions, and the GRANT/REVOKE
statements that turn a role's stored permissions into exactly the wanted ones.

Pure functions (no session): identifiers are always double-quoted (``quote``), permission names come from
``system_auth.role_permissions`` and are checked against ``_PERMISSION_NAME`` before they are formatted in.
https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/security.html#grant-permission
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kubetrove.agent.engines.base import Conflict
from kubetrove.agent.protocol import Grant, Privilege

# Portable grants -> keyspace permissions. ``None`` is ALL PERMISSIONS (whatever the server version
# defines for a keyspace: CREATE, ALTER, DROP, SELECT, MODIFY, AUTHORIZE, and 5.0's UNMASK, SELECT_MASKED).
PERMISSIONS: Mapping[Privilege, frozenset[str] | None] = {
    Privilege.READ: frozenset({"SELECT"}),
    Privilege.READ_WRITE: frozenset({"SELECT", "MODIFY"}),
    Privilege.ADMIN: None,
}
_PERMISSION_NAME = re.compile(r"[A-Z_]+")  # as stored in system_auth.role_permissions


def quote(identifier: str) -> str:
    """CQL double-quoted identifier (embedded quotes doubled): case-preserving and inert."""
    return '"' + identifier.replace('"', '""') + '"'


def resource_cql(resource: str) -> str:
    """Translate a stored resource name ("data/ks/tbl", "roles/r", ...) into its CQL form for REVOKE."""
    kind, *parts = resource.split("/")
    if kind == "data":
        return {0: "ALL KEYSPACES", 1: "KEYSPACE {}", 2: "TABLE {}.{}"}[len(parts)].format(*map(quote, parts))
    if kind == "roles":
        return f"ROLE {quote(parts[0])}" if parts else "ALL ROLES"
    if kind == "functions" and len(parts) < 2:
        return f"ALL FUNCTIONS IN KEYSPACE {quote(parts[0])}" if parts else "ALL FUNCTIONS"
    # Single functions ("functions/ks/f[argtypes]") and MBeans are never granted by the agent.
    raise Conflict(f"a grant on {resource!r} exists that the agent does not manage; revoke it by hand")


def wanted_permissions(grants: list[Grant]) -> dict[str, frozenset[str] | None]:
    """Stored resource name ("data/<keyspace>") -> permissions the grants ask for (None: ALL PERMISSIONS)."""
    wanted: dict[str, frozenset[str] | None] = {}
    for grant in grants:
        resource = f"data/{grant.database}"
        for privilege in grant.privileges:
            perms, prev = PERMISSIONS[privilege], wanted.get(resource, frozenset())
            wanted[resource] = None if perms is None or prev is None else prev | perms
    return wanted


def permission_statements(
    role: str, current: Mapping[str, frozenset[str]], wanted: Mapping[str, frozenset[str] | None]
) -> list[str]:
    """GRANT/REVOKE statements that turn ``current`` into exactly ``wanted`` (revokes first).

    Nothing is emitted when they already match, except admin's idempotent GRANT ALL. Single
    permissions are revoked (not ALL then re-granted) so a client never sees a gap in what stays.
    """
    target, revokes, grants = quote(role), [], []
    for resource, perms in sorted(current.items()):
        keep = wanted.get(resource, frozenset())
        if resource not in wanted:
            revokes.append(f"REVOKE ALL PERMISSIONS ON {resource_cql(resource)} FROM {target}")
        elif keep is not None:
            for perm in sorted(perms - keep):
                if not _PERMISSION_NAME.fullmatch(perm):
                    raise Conflict(f"unexpected permission {perm!r} on {resource!r}")
                revokes.append(f"REVOKE {perm} ON {resource_cql(resource)} FROM {target}")
    for resource, keep in sorted(wanted.items()):
        if keep is None:
            grants.append(f"GRANT ALL PERMISSIONS ON {resource_cql(resource)} TO {target}")
        else:
            grants += [
                f"GRANT {perm} ON {resource_cql(resource)} TO {target}"
                for perm in sorted(keep - current.get(resource, frozenset()))
            ]
    return revokes + grants
