"""Cassandra permissions as CQL (engines.cassandra.permissions): grants, GRANT/REVOKE plans, quoting."""

from __future__ import annotations

import pytest

from kubetrove.agent.engines.base import Conflict
from kubetrove.agent.engines.cassandra.permissions import (
    permission_statements,
    quote,
    resource_cql,
    wanted_permissions,
)
from kubetrove.agent.protocol import Grant, Privilege

R, RW, ADMIN = Privilege.READ, Privilege.READ_WRITE, Privilege.ADMIN


def test_portable_grants_map_to_keyspace_permissions() -> None:
    grants = [
        Grant(database="a", privileges=[R]),
        Grant(database="b", privileges=[R, RW]),
        Grant(database="c", privileges=[R, ADMIN]),
    ]
    assert wanted_permissions(grants) == {
        "data/a": frozenset({"SELECT"}),
        "data/b": frozenset({"SELECT", "MODIFY"}),
        "data/c": None,  # ALL PERMISSIONS
    }


def test_plan_revokes_what_is_not_wanted_and_grants_what_is_missing() -> None:
    current = {
        "data/shop": frozenset({"SELECT", "MODIFY", "DROP"}),
        "data/gone": frozenset({"SELECT"}),
        "data/shop/items": frozenset({"SELECT"}),
    }
    wanted = {"data/shop": frozenset({"SELECT"}), "data/new": frozenset({"SELECT", "MODIFY"})}
    assert permission_statements("bob", current, wanted) == [
        'REVOKE ALL PERMISSIONS ON KEYSPACE "gone" FROM "bob"',
        'REVOKE DROP ON KEYSPACE "shop" FROM "bob"',
        'REVOKE MODIFY ON KEYSPACE "shop" FROM "bob"',
        'REVOKE ALL PERMISSIONS ON TABLE "shop"."items" FROM "bob"',
        'GRANT MODIFY ON KEYSPACE "new" TO "bob"',
        'GRANT SELECT ON KEYSPACE "new" TO "bob"',
    ]


def test_plan_is_empty_when_already_equal() -> None:
    state = {"data/shop": frozenset({"SELECT"})}
    assert permission_statements("bob", state, state) == []


def test_admin_is_an_idempotent_grant_all() -> None:
    assert permission_statements("bob", {"data/k": frozenset({"SELECT"})}, {"data/k": None}) == [
        'GRANT ALL PERMISSIONS ON KEYSPACE "k" TO "bob"'
    ]


@pytest.mark.parametrize(
    ("resource", "cql"),
    [
        ("data", "ALL KEYSPACES"),
        ("roles", "ALL ROLES"),
        ("roles/r", 'ROLE "r"'),
        ("functions", "ALL FUNCTIONS"),
        ("functions/k", 'ALL FUNCTIONS IN KEYSPACE "k"'),
    ],
)
def test_stored_resources_translate_to_cql(resource: str, cql: str) -> None:
    assert resource_cql(resource) == cql


def test_unmanaged_resources_are_a_conflict_not_a_guess() -> None:
    with pytest.raises(Conflict):
        resource_cql("functions/k/f[org.apache.cassandra.db.marshal.Int32Type]")


def test_quote_doubles_embedded_quotes() -> None:
    assert quote('a"; DROP KEYSPACE x; --') == '"a""; DROP KEYSPACE x; --"'
