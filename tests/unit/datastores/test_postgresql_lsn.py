"""PostgreSQL LSNs: total order and byte arithmetic (hypothesis) plus pg_lsn documentation examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrove.datastores.base import Ordering
from kubetrove.datastores.postgresql.lsn import MAX_LSN, Lsn, compare, diff, format_lsn, parse_lsn

PROPERTY = settings(deadline=None, max_examples=300)  # no deadline: no timing asserts on a busy box

# Whole range, plus values near the 32-bit seam where hi/lo carries happen.
values = st.one_of(st.integers(0, MAX_LSN), st.integers(2**32 - 50, 2**32 + 50))
lsns = values.map(Lsn)


@PROPERTY
@given(values)
def test_format_round_trips(value: int) -> None:
    assert parse_lsn(format_lsn(value)) == value
    assert Lsn.parse(str(Lsn(value))) == Lsn(value)


@PROPERTY
@given(values, st.booleans(), st.booleans())
def test_format_is_canonical(value: int, lower: bool, padded: bool) -> None:
    # Any accepted spelling (lower-case, PostgreSQL 19's zero-padded low half) formats the same.
    text = f"{value >> 32:X}/{value & 0xFFFFFFFF:08X}" if padded else format_lsn(value)
    text = text.lower() if lower else text
    canonical = Lsn.parse(text).format()
    assert canonical == format_lsn(value)
    assert Lsn.parse(canonical).format() == canonical


@PROPERTY
@given(lsns, lsns)
def test_compare_is_the_integer_order(a: Lsn, b: Lsn) -> None:
    expected = {-1: Ordering.LESS, 0: Ordering.EQUAL, 1: Ordering.GREATER}[
        (a.value > b.value) - (a.value < b.value)
    ]
    assert compare(a, b) is expected
    assert compare(a, b) is not Ordering.INCOMPARABLE
    assert (a < b) == (compare(a, b) is Ordering.LESS)


@PROPERTY
@given(lsns, lsns, lsns)
def test_diff_is_antisymmetric_and_additive(a: Lsn, b: Lsn, c: Lsn) -> None:
    assert diff(a, b) == -diff(b, a)
    assert diff(a, b) + diff(b, c) == diff(a, c)
    assert (diff(a, b) == 0) == (compare(a, b) is Ordering.EQUAL)
    assert (diff(a, b) > 0) == (compare(a, b) is Ordering.GREATER)


# --- examples from the PostgreSQL documentation and its pg_lsn regression test ------------------


def test_docs_example() -> None:
    # "pg_lsn Type": printed as two hex numbers of up to 8 digits each, e.g. 16/B374D848.
    assert parse_lsn("16/B374D848") == 0x16 << 32 | 0xB374D848
    assert format_lsn(0x16B374D848) == "16/B374D848"


@pytest.mark.parametrize(
    ("text", "value"),
    [("0/0", 0), ("FFFFFFFF/FFFFFFFF", MAX_LSN), ("0/16AE7F8", 0x16AE7F8), ("0/16ae7f8", 0x16AE7F8)],
)
def test_regression_inputs(text: str, value: int) -> None:
    assert parse_lsn(text) == value


@pytest.mark.parametrize(("value", "text"), [(0, "0/0"), (0x16AE7F8, "0/16AE7F8"), (2**32 + 1, "1/1")])
def test_prints_like_postgresql_15_to_18(value: int, text: str) -> None:
    # pg_lsn_out's "%X/%X": upper-case hex, no zero padding of either half.
    assert format_lsn(value) == text


def test_regression_subtraction() -> None:
    # src/test/regress/sql/pg_lsn.sql: '0/16AE7F7'::pg_lsn - '0/16AE7F8'::pg_lsn = -1, and back.
    assert diff(Lsn.parse("0/16AE7F7"), Lsn.parse("0/16AE7F8")) == -1
    assert Lsn.parse("0/16AE7F8") - Lsn.parse("0/16AE7F7") == 1
    # Across the 32-bit seam: 1/0 is exactly one byte after 0/FFFFFFFF.
    assert diff(Lsn.parse("1/0"), Lsn.parse("0/FFFFFFFF")) == 1


@pytest.mark.parametrize(
    "text",
    # The regression test's invalid inputs, plus a 9-digit half and a sign.
    [
        "G/0",
        "-1/0",
        " 0/12345678",
        "ABCD/",
        "/ABCD",
        "16AE7F7",
        "123456789/0",
        "0/123456789",
        "+1/0",
        "0/0\n",
    ],
)
def test_regression_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="malformed PostgreSQL LSN"):
        Lsn.parse(text)


@pytest.mark.parametrize("value", [-1, MAX_LSN + 1])
def test_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        Lsn(value)
