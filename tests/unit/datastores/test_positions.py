"""compare_positions per engine: delegation to the position algebra, and the engines without one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetrove.api.common import Engine
from kubetrove.datastores.base import Ordering
from kubetrove.datastores.mongodb import optime
from kubetrove.datastores.registry import REGISTRY

UUID_A = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
UUID_B = "4f2e1a00-71ca-11e1-9e33-c80aa9429562"


@pytest.mark.parametrize(
    ("engine", "a", "b", "expected"),
    [
        (Engine.MYSQL, f"{UUID_A}:1-5", f"{UUID_A}:1-9", Ordering.LESS),
        (Engine.MYSQL, f"{UUID_A}:1-9", f"{UUID_A}:1-9", Ordering.EQUAL),
        # An errant replica: neither a subset nor a superset of the primary's set.
        (Engine.MYSQL, f"{UUID_A}:1-5,{UUID_B}:1", f"{UUID_A}:1-9", Ordering.INCOMPARABLE),
        (Engine.MARIADB, "0-1-100", "0-1-99", Ordering.GREATER),
        (Engine.MARIADB, "0-1-100,1-2-5", "0-1-99,1-2-6", Ordering.INCOMPARABLE),
        (Engine.POSTGRESQL, "16/B374D848", "16/B374D849", Ordering.LESS),
        (Engine.POSTGRESQL, "0/0", "0/0", Ordering.EQUAL),
        (Engine.MONGODB, "1700000000:3", "1700000000:2", Ordering.GREATER),
        (Engine.MONGODB, "1700000000:3", "1700000001:1", Ordering.LESS),
        (Engine.MONGODB, "1700000000.3", "1700000000:3", Ordering.EQUAL),
        (Engine.CASSANDRA, "", "", Ordering.EQUAL),
        (Engine.CASSANDRA, "a", "b", Ordering.INCOMPARABLE),
    ],
)
def test_compare_positions(engine: Engine, a: str, b: str, expected: Ordering) -> None:
    assert REGISTRY[engine].compare_positions(a, b) is expected


@pytest.mark.parametrize("bad", ["", "12", "1:2:3", "-1:0", "4294967296:0", "a:b"])
def test_malformed_optimes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="optime"):
        optime.parse(bad)


TIMESTAMPS = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))


@given(x=TIMESTAMPS, y=TIMESTAMPS)
def test_optimes_are_totally_ordered_like_tuples(x: tuple[int, int], y: tuple[int, int]) -> None:
    got = optime.compare(f"{x[0]}:{x[1]}", f"{y[0]}:{y[1]}")
    assert got is (Ordering.LESS if x < y else Ordering.GREATER if x > y else Ordering.EQUAL)
    # Antisymmetry: swapping the arguments flips the answer.
    flipped = {
        Ordering.LESS: Ordering.GREATER,
        Ordering.GREATER: Ordering.LESS,
        Ordering.EQUAL: Ordering.EQUAL,
    }
    assert optime.compare(f"{y[0]}:{y[1]}", f"{x[0]}:{x[1]}") is flipped[got]
