"""Kubernetes quantities parse exactly, in every spelling apimachinery accepts."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetrove.datastores.quantity import BINARY, DECIMAL, parse_quantity

SUFFIXES = {**{k: Fraction(v) for k, v in BINARY.items()}, **DECIMAL}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10Gi", 10 * 2**30),
        ("1G", 10**9),
        ("500M", 500 * 10**6),
        ("512Mi", 512 * 2**20),
        ("0.5Gi", 512 * 2**20),
        ("1.5Ti", 3 * 2**39),
        ("100k", 100_000),
        ("64Ki", 65536),
        ("250m", Fraction(1, 4)),
        ("1e3", 1000),
        ("1E3", 1000),
        ("12E", 12 * 10**18),
        ("5e-1", Fraction(1, 2)),
        ("+3", 3),
        ("-1Mi", -(2**20)),
        (".5", Fraction(1, 2)),
        ("7.", 7),
        ("1073741824", 2**30),
    ],
)
def test_examples(text: str, value: Fraction | int) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text", ["", "Gi", "1 Gi", "1gi", "1GB", "1.2.3", "1e", "1Ki3", "ten", "1e99999", "0x10"]
)
def test_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"quantity|exponent"):
        parse_quantity(text)


@given(n=st.integers(min_value=0, max_value=10**12), suffix=st.sampled_from(sorted(SUFFIXES)))
def test_integer_with_any_suffix(n: int, suffix: str) -> None:
    assert parse_quantity(f"{n}{suffix}") == n * SUFFIXES[suffix]


@given(
    whole=st.integers(min_value=0, max_value=10**6),
    frac=st.integers(min_value=0, max_value=999),
    suffix=st.sampled_from(sorted(SUFFIXES)),
)
def test_decimal_fractions_are_exact(whole: int, frac: int, suffix: str) -> None:
    expected = (whole + Fraction(frac, 1000)) * SUFFIXES[suffix]
    assert parse_quantity(f"{whole}.{frac:03d}{suffix}") == expected


@given(n=st.integers(min_value=0, max_value=10**9), exponent=st.integers(min_value=-30, max_value=30))
def test_exponent_form_equals_decimal_scaling(n: int, exponent: int) -> None:
    assert parse_quantity(f"{n}e{exponent}") == n * Fraction(10) ** exponent


@given(a=st.integers(min_value=0, max_value=2**40), b=st.integers(min_value=0, max_value=2**40))
def test_order_is_preserved_across_spellings(a: int, b: int) -> None:
    # The same byte counts written in Ki and in plain bytes compare the same way.
    assert (parse_quantity(f"{a}Ki") < parse_quantity(str(b * 1024))) == (a < b)
    assert parse_quantity(f"{a}Ki") == parse_quantity(f"{a * 1024}")


def test_binary_and_decimal_differ() -> None:
    assert parse_quantity("1Gi") > parse_quantity("1G")
    assert parse_quantity("1000Mi") < parse_quantity("1Gi") < parse_quantity("1100M")
