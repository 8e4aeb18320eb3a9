"""validate_parameters: literal messages, and every catalog entry's range checked at its edges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetrove.api.common import Engine
from kubetrove.datastores.base import Datastore, ParameterSpec, ParamType
from kubetrove.datastores.params import SizeSyntax
from kubetrove.datastores.registry import REGISTRY

MARIADB = REGISTRY[Engine.MARIADB]
STORES = [pytest.param(REGISTRY[e], id=str(e)) for e in Engine]


def test_mariadb_messages() -> None:
    problems = MARIADB.validate_parameters(
        {
            "max_connections": "abc",
            "innodb_buffer_pool_size": "1X",
            "slow_query_log": "yes",
            "long_query_time": "-1",
            "sql_mode": "ANSI\nlocal_infile = ON",
        }
    )
    assert problems == [
        "parameter innodb_buffer_pool_size=1X for mariadb: "
        "expected a size (bytes, or a number with unit K, M, G, T) between 5M and 1T",
        "parameter long_query_time=-1 for mariadb: expected a number between 0 and 31536000",
        "parameter max_connections=abc for mariadb: expected an integer between 10 and 100000",
        "parameter slow_query_log=yes for mariadb: expected one of ON, OFF",
        "parameter sql_mode='ANSI\\nlocal_infile = ON' for mariadb: "
        "expected a string of letters, digits and _.,:/@+-= * (no quotes, # or line breaks)",
    ]


def test_unknown_parameter_lists_the_catalog() -> None:
    [message] = REGISTRY[Engine.CASSANDRA].validate_parameters({"num_tokens": "256"})
    assert message.startswith(
        "parameter num_tokens for cassandra: unknown parameter (supported: auto_snapshot, "
    )
    assert message.endswith(", write_request_timeout)")


def test_postgresql_messages_name_units() -> None:
    problems = REGISTRY[Engine.POSTGRESQL].validate_parameters(
        {"shared_buffers": "1024", "work_mem": "4mb", "statement_timeout": "30s", "log_statement": "some"}
    )
    assert problems == [
        "parameter log_statement=some for postgresql: expected one of none, ddl, mod, all",
        # A bare number would be read in 8kB blocks: refused, a unit is required.
        "parameter shared_buffers=1024 for postgresql: "
        "expected a size with unit kB, MB, GB, TB between 128kB and 1TB",
        "parameter statement_timeout=30s for postgresql: expected an integer between 0 and 2147483647 (ms)",
        "parameter work_mem=4mb for postgresql: "
        "expected a size with unit kB, MB, GB, TB between 64kB and 2TB",
    ]


def test_mysql_mongodb_and_cassandra_messages() -> None:
    assert REGISTRY[Engine.MYSQL].validate_parameters(
        {"innodb_buffer_pool_size": "2T", "max_allowed_packet": "512"}
    ) == [
        "parameter innodb_buffer_pool_size=2T for mysql: "
        "expected a size (bytes, or a number with unit K, M, G, T) between 5M and 1T",
        "parameter max_allowed_packet=512 for mysql: "
        "expected a size (bytes, or a number with unit K, M, G, T) between 1K and 1G",
    ]
    assert REGISTRY[Engine.MONGODB].validate_parameters(
        {"setParameter.notablescan": "True", "storage.wiredTiger.engineConfig.cacheSizeGB": "0.1"}
    ) == [
        "parameter setParameter.notablescan=True for mongodb: expected one of true, false",
        "parameter storage.wiredTiger.engineConfig.cacheSizeGB=0.1 for mongodb: "
        "expected a number between 0.25 and 10000",
    ]
    assert REGISTRY[Engine.CASSANDRA].validate_parameters({"read_request_timeout": "5s"}) == [
        "parameter read_request_timeout=5s for cassandra: expected an integer between 10 and 600000 (ms)"
    ]


def test_trailing_newlines_and_huge_numbers_are_refused() -> None:
    # Found by hypothesis: re.match with "$" accepted "0\n", which would have ended the config line.
    store = REGISTRY[Engine.MYSQL]
    for name, value in [
        ("sync_binlog", "0\n"),
        ("sql_mode", "ANSI\n"),
        ("long_query_time", "1\n"),
        ("innodb_buffer_pool_size", "1G\n"),
        ("max_connections", "9" * 5000),
    ]:
        assert len(store.validate_parameters({name: value})) == 1, (name, value)


def test_long_values_are_shortened_in_messages() -> None:
    [message] = MARIADB.validate_parameters({"max_connections": "9" * 200})
    assert (
        message
        == "parameter max_connections="
        + "9" * 61
        + "... for mariadb: expected an integer between 10 and 100000"
    )


def test_mysql_sizes_take_any_case_suffix_postgresql_exact_units() -> None:
    assert (
        MARIADB.validate_parameters({"innodb_buffer_pool_size": "2g", "max_allowed_packet": "67108864"}) == []
    )
    pg = REGISTRY[Engine.POSTGRESQL]
    assert pg.validate_parameters({"shared_buffers": "2GB", "work_mem": "65536kB"}) == []
    assert pg.validate_parameters({"shared_buffers": "2gb"}) != []


def _edges(spec: ParameterSpec) -> tuple[list[str], list[str]]:
    """(valid, invalid) sample values at the edges of ``spec``."""
    if spec.type in (ParamType.BOOL, ParamType.ENUM):
        return list(spec.allowed), ["", "maybe", spec.allowed[0].upper() + "x"]
    if spec.type is ParamType.STRING:
        return ["UTC", "utf8mb4_unicode_ci", "A,B"], ["", "a'b", "a\nb", "a#b", 'a"b', "a\\b"]
    assert spec.minimum is not None and spec.maximum is not None
    if spec.type is ParamType.INT:
        lo, hi = int(spec.minimum), int(spec.maximum)
        return [str(lo), str(hi)], [str(lo - 1), str(hi + 1), "1.5", "ten", ""]
    if spec.type is ParamType.FLOAT:
        return [str(spec.minimum), str(spec.maximum)], [
            str(spec.minimum - 0.01),
            str(spec.maximum + 1),
            "nan",
            "inf",
        ]
    return [], []  # SIZE: see test_size_edges (the spelling is engine-specific)


@pytest.mark.parametrize("store", STORES)
def test_every_catalog_entry_accepts_its_edges_and_refuses_beyond(store: Datastore) -> None:
    for name, spec in store.parameters.items():
        valid, invalid = _edges(spec)
        for value in valid:
            assert store.validate_parameters({name: value}) == [], (name, value)
        for value in invalid:
            assert len(store.validate_parameters({name: value})) == 1, (name, value)


@pytest.mark.parametrize("engine", [Engine.MYSQL, Engine.MARIADB, Engine.POSTGRESQL])
def test_size_edges(engine: Engine) -> None:
    store = REGISTRY[engine]
    for name, spec in store.parameters.items():
        if spec.type is not ParamType.SIZE:
            continue
        assert spec.minimum is not None and spec.maximum is not None
        lo, hi = int(spec.minimum), int(spec.maximum)
        # Both engines take a kilobyte count; every SIZE bound in the catalogs is a whole number of them.
        assert lo % 1024 == 0 and hi % 1024 == 0, name
        unit = "kB" if engine is Engine.POSTGRESQL else "K"
        assert store.validate_parameters({name: f"{lo // 1024}{unit}"}) == [], name
        assert store.validate_parameters({name: f"{hi // 1024}{unit}"}) == [], name
        assert store.validate_parameters({name: f"{hi // 1024 + 1}{unit}"}) != [], name
        if lo > 0:
            assert store.validate_parameters({name: f"{lo // 1024 - 1}{unit}"}) != [], name


@pytest.mark.parametrize("store", STORES)
@given(value=st.text(min_size=1, max_size=40))
def test_accepted_values_can_never_break_out_of_the_config_line(store: Datastore, value: str) -> None:
    for name in store.parameters:
        if store.validate_parameters({name: value}) == []:
            assert not set(value) & set("\n\r'\"\\#"), (name, value)
            line_count = store.render_config({}).count("\n") + 1
            assert store.render_config({name: value}).count("\n") <= line_count + 4


def test_size_syntax_parses_and_formats() -> None:
    sizes = SizeSyntax(units={"K": 1024, "M": 1024**2}, case_sensitive=False)
    assert sizes.parse("3m") == 3 * 1024**2
    assert sizes.parse("12") == 12
    assert sizes.parse("1.5M") is None and sizes.parse("1Q") is None
    assert sizes.format(3 * 1024**2) == "3M" and sizes.format(1536) == "1536"
