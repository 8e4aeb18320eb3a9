"""PostgreSQL grants planning (pure): levels read back from the database ACL, and the default-privilege
matrix that makes a grant hold for tables and sequences created later by any creator (issue 23)."""

from __future__ import annotations

from kubetrove.agent.engines.postgresql.grants import (
    DefaultKey,
    default_statements,
    grant_statements,
    level_of,
    wanted_defaults,
)
from kubetrove.agent.protocol import Privilege

R, RW, A = Privilege.READ, Privilege.READ_WRITE, Privilege.ADMIN
ALTER = 'ALTER DEFAULT PRIVILEGES FOR ROLE "{}" IN SCHEMA public '


def text(statements: list) -> list[str]:  # type: ignore[type-arg]
    return [s.as_string(None) for s in statements]


def test_the_level_is_read_back_from_the_database_privileges() -> None:
    assert level_of(["CONNECT"]) is R
    assert level_of(["CONNECT", "TEMPORARY"]) is RW
    assert level_of(["CONNECT", "TEMPORARY", "CREATE"]) is A
    assert level_of([]) is None


def test_existing_objects_get_exactly_the_level_and_no_default_privileges() -> None:
    statements = text(grant_statements("reader", "orders", R))
    assert 'GRANT CONNECT ON DATABASE "orders" TO "reader"' in statements
    assert 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "reader"' in statements
    unwanted = "INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"
    assert f'REVOKE {unwanted} ON ALL TABLES IN SCHEMA public FROM "reader"' in statements
    assert not any("DEFAULT PRIVILEGES" in s for s in statements)  # the matrix does that, for every creator
    revoked = text(grant_statements("reader", "orders", None))
    assert all(s.startswith("REVOKE") for s in revoked) and len(revoked) == 4


def test_every_creator_grants_every_other_grantee_its_level() -> None:
    wanted = wanted_defaults(["app", "agent"], {"reader": R, "app": RW})
    assert wanted == {
        ("app", "TABLES", "reader"): frozenset({"SELECT"}),
        ("app", "SEQUENCES", "reader"): frozenset({"SELECT"}),
        ("agent", "TABLES", "reader"): frozenset({"SELECT"}),
        ("agent", "SEQUENCES", "reader"): frozenset({"SELECT"}),
        ("agent", "TABLES", "app"): frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}),
        ("agent", "SEQUENCES", "app"): frozenset({"USAGE", "SELECT"}),
    }  # nothing for app FOR ROLE app: an owner has every privilege on what it creates


def test_a_creator_granted_after_the_reader_gets_default_privileges_for_it() -> None:
    before = wanted_defaults(["agent"], {"reader": R})
    out = text(default_statements(["agent", "app"], {"reader": R, "app": RW}, before))
    assert out == [
        ALTER.format("agent") + 'GRANT USAGE, SELECT ON SEQUENCES TO "app"',
        ALTER.format("agent") + 'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "app"',
        ALTER.format("app") + 'GRANT SELECT ON SEQUENCES TO "reader"',
        ALTER.format("app") + 'GRANT SELECT ON TABLES TO "reader"',
    ]


def test_nothing_is_executed_when_the_matrix_already_holds() -> None:
    levels = {"reader": R, "app": RW, "owner": A}
    creators = ["agent", "app", "owner"]
    assert default_statements(creators, levels, wanted_defaults(creators, levels)) == []
    # PostgreSQL 17's ALL also holds MAINTAIN: an admin grantee keeps it, and nothing is re-granted.
    current = wanted_defaults(creators, levels)
    current[("app", "TABLES", "owner")] = current[("app", "TABLES", "owner")] | {"MAINTAIN"}
    assert default_statements(creators, levels, current) == []


def test_revoking_and_downgrading_remove_every_default_privilege_naming_them() -> None:
    creators = ["agent", "app", "app2"]
    current = wanted_defaults(creators, {"reader": R, "app": RW, "app2": RW})
    # reader revoked, app2 downgraded to read: app2 no longer creates.
    out = text(default_statements(["agent", "app"], {"app": RW, "app2": R}, current))
    assert out == [
        ALTER.format("agent") + 'REVOKE USAGE ON SEQUENCES FROM "app2"',
        ALTER.format("agent") + 'REVOKE ALL ON SEQUENCES FROM "reader"',
        ALTER.format("agent") + 'REVOKE DELETE, INSERT, UPDATE ON TABLES FROM "app2"',
        ALTER.format("agent") + 'REVOKE ALL ON TABLES FROM "reader"',
        ALTER.format("app") + 'REVOKE USAGE ON SEQUENCES FROM "app2"',
        ALTER.format("app") + 'REVOKE ALL ON SEQUENCES FROM "reader"',
        ALTER.format("app") + 'REVOKE DELETE, INSERT, UPDATE ON TABLES FROM "app2"',
        ALTER.format("app") + 'REVOKE ALL ON TABLES FROM "reader"',
        ALTER.format("app2") + 'REVOKE ALL ON SEQUENCES FROM "app"',
        ALTER.format("app2") + 'REVOKE ALL ON SEQUENCES FROM "reader"',
        ALTER.format("app2") + 'REVOKE ALL ON TABLES FROM "app"',
        ALTER.format("app2") + 'REVOKE ALL ON TABLES FROM "reader"',
    ]


def test_an_owners_own_entry_is_never_touched() -> None:
    current: dict[DefaultKey, frozenset[str]] = {("app", "TABLES", "app"): frozenset({"SELECT"})}
    assert default_statements(["app"], {"app": RW}, current) == []
