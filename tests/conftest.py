"""Test tiers (docs/development.md): unit always; integration and e2e when asked for.

``make test`` passes ``--with-integration --with-e2e``: every tier runs, nothing is skipped. Without the
flags the slow tiers are *deselected* (not skipped), so a plain ``pytest`` stays fast and hermetic.
A tier that was asked for but cannot start its servers FAILS: a skipped tier never counts as passing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings

# Tests never assert on wall-clock time, and hypothesis's per-example deadline is one: on a loaded 2-core
# CI machine a 200 ms deadline failed property tests whose property held.
settings.register_profile("kubetrove", deadline=None)
settings.load_profile("kubetrove")

TIERS = {"integration": "--with-integration", "e2e": "--with-e2e"}
# Modules that run after every other one of their session, in this order. The e2e tier's Cassandra
# tests go last: make test runs the integration tier beside the e2e tier, and that tier runs its own
# Cassandra tests first; the two take turns anyway (tests/integration/servers/cassandra.py, hold_jvm_turn).
LAST = ("tests/e2e/test_operator_ring.py", "tests/e2e/realnode/test_cassandra_pods.py")


def pytest_addoption(parser: pytest.Parser) -> None:
    for tier, flag in TIERS.items():
        parser.addoption(flag, action="store_true", default=False, help=f"run the {tier} tier")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    selected, deselected = [], []
    for item in items:
        tier = Path(item.path).relative_to(root).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
            if not config.getoption(TIERS[tier]):
                deselected.append(item)
                continue
        selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)

    # A stable sort: every module keeps its own order, and LAST's modules go at the end in LAST's order.
    def rank(item: pytest.Item) -> int:
        path = Path(item.path).relative_to(root.parent).as_posix()
        return LAST.index(path) + 1 if path in LAST else 0

    items[:] = sorted(selected, key=rank)
