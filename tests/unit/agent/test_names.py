"""Identifier validation, fuzzed: what is accepted quotes safely everywhere; hostile input never passes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from kubetrove.agent import names
from kubetrove.agent.engines.mysql_family.driver import grant_schema, quote_ident
from kubetrove.agent.engines.registry import REGISTRY, bundle_for

ENGINES = sorted(REGISTRY)
DANGEROUS = "'\";\\\x00`%$/. \n\t*"


def accepted(engine: str, kind: names.Kind, name: str) -> bool:
    try:
        names.validate(bundle_for(engine).names, kind, name)
    except names.InvalidName:
        return False
    return True


@given(st.sampled_from(ENGINES), st.sampled_from(list(names.Kind)), st.text(max_size=100))
def test_anything_accepted_is_a_plain_bounded_identifier(engine: str, kind: names.Kind, name: str) -> None:
    if not accepted(engine, kind, name):
        return
    rule = bundle_for(engine).names
    assert names.PORTABLE.fullmatch(name)
    assert 1 <= len(name.encode()) <= (rule.max_database if kind is names.Kind.DATABASE else rule.max_user)
    assert not set(name) & set(DANGEROUS)
    # Quoting is then the identity plus delimiters in every dialect: nothing to escape, nothing to truncate.
    assert quote_ident(name) == f"`{name}`"
    assert grant_schema(name) == name.replace("_", "\\_")
    assert sql.Identifier(name).as_string() == f'"{name}"'


@given(
    st.sampled_from(ENGINES),
    st.sampled_from(list(names.Kind)),
    st.text(max_size=20),
    st.sampled_from(DANGEROUS),
    st.text(max_size=20),
)
def test_any_dangerous_character_is_refused(
    engine: str, kind: names.Kind, head: str, bad: str, tail: str
) -> None:
    assert not accepted(engine, kind, head + bad + tail)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_classic_injection_is_refused(engine: str) -> None:
    for kind in names.Kind:
        with pytest.raises(names.InvalidName):
            names.validate(bundle_for(engine).names, kind, "x'; DROP DATABASE y; --")


@pytest.mark.parametrize(
    ("engine", "kind", "name", "ok"),
    [
        ("mysql", names.Kind.DATABASE, "d" * 64, True),
        ("mysql", names.Kind.DATABASE, "d" * 65, False),
        ("mysql", names.Kind.USER, "u" * 32, True),
        ("mysql", names.Kind.USER, "u" * 33, False),
        ("mariadb", names.Kind.USER, "u" * 80, True),
        ("mariadb", names.Kind.USER, "u" * 81, False),
        ("postgresql", names.Kind.DATABASE, "p" * 63, True),
        ("postgresql", names.Kind.DATABASE, "p" * 64, False),
        ("mongodb", names.Kind.DATABASE, "m" * 63, True),
        ("mongodb", names.Kind.DATABASE, "m" * 64, False),
        ("cassandra", names.Kind.DATABASE, "k" * 48, True),
        ("cassandra", names.Kind.DATABASE, "k" * 49, False),
        ("cassandra", names.Kind.DATABASE, "my-keyspace", False),
        ("cassandra", names.Kind.DATABASE, "system_auth", False),
        ("postgresql", names.Kind.DATABASE, "my-db", True),
        ("mysql", names.Kind.DATABASE, "information_schema", False),
        ("mysql", names.Kind.DATABASE, "MySQL", False),
        ("postgresql", names.Kind.USER, "postgres", False),
        ("mongodb", names.Kind.DATABASE, "admin", False),
        ("mysql", names.Kind.DATABASE, "1abc", False),
        ("mysql", names.Kind.DATABASE, "", False),
        ("mysql", names.Kind.DATABASE, "café", False),
    ],
)
def test_engine_limits(engine: str, kind: names.Kind, name: str, ok: bool) -> None:
    assert accepted(engine, kind, name) is ok


def test_unknown_engine_has_no_rule() -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        bundle_for("oracle")


@given(st.text(max_size=40))
def test_parameters_and_hosts_never_carry_quotes(value: str) -> None:
    for validate in (names.validate_parameter, names.validate_host):
        try:
            validate(value)
        except names.InvalidName:
            continue
        assert not set(value) & set("'\";\\\x00` \n")


def test_parameter_and_host_examples() -> None:
    assert names.validate_parameter("auto_explain.log_min_duration")
    assert names.validate_host("db-0.db.ns.svc.cluster.local") and names.validate_host("fd00::1")
    for bad in ("a b", "x;y", "a..b.c", ""):
        with pytest.raises(names.InvalidName):
            names.validate_parameter(bad)
