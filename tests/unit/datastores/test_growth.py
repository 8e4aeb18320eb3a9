"""Storage autogrow's decision (datastores/growth.py): a table of situations and what is decided."""

from __future__ import annotations

import pytest

from kubetrove.api.common import Autogrow
from kubetrove.datastores.growth import (
    Action,
    Claim,
    Fill,
    format_size,
    next_size,
    plan,
    restarts,
    wanted_size,
)

GI = 2**30
AUTO = Autogrow(threshold=80, increment="50%", maximum="4Gi")


def fill(percent: int, room: int = 100) -> Fill:
    """A volume ``percent`` full (of ``room`` units the engine can use)."""
    return Fill(used_bytes=percent * room, available_bytes=(100 - percent) * room)


def bound(size: str, capacity: str | None = None) -> Claim:
    return Claim(requested=size, capacity=size if capacity is None else capacity)


TWO = {"db-0": bound("1Gi"), "db-1": bound("1Gi")}


@pytest.mark.parametrize(
    ("decided", "claims", "fills", "expandable", "action", "size", "member"),
    [
        # below the threshold: nothing
        (None, TWO, {"db-0": fill(50), "db-1": fill(79)}, True, Action.NONE, "1Gi", None),
        # nothing measured (agents unreachable): nothing
        (None, TWO, {}, True, Action.NONE, "1Gi", None),
        # crossing: +50 % of 1Gi, every claim
        (None, TWO, {"db-0": fill(50), "db-1": fill(80)}, True, Action.GROW, "1536Mi", "db-1"),
        # several members over: the fullest is named
        (None, TWO, {"db-0": fill(95), "db-1": fill(85)}, None, Action.GROW, "1536Mi", "db-0"),
        # grows from the size decided before, not from the spec
        (
            "2Gi",
            {"db-0": bound("2Gi"), "db-1": bound("2Gi")},
            {"db-0": fill(90)},
            True,
            Action.GROW,
            "3Gi",
            "db-0",
        ),
        # capped at the maximum
        (
            "3Gi",
            {"db-0": bound("3Gi"), "db-1": bound("3Gi")},
            {"db-0": fill(90)},
            True,
            Action.GROW,
            "4Gi",
            "db-0",
        ),
        # at the maximum and still full
        (
            "4Gi",
            {"db-0": bound("4Gi"), "db-1": bound("4Gi")},
            {"db-1": fill(99)},
            True,
            Action.MAXIMUM,
            "4Gi",
            "db-1",
        ),
        # in flight: a claim's capacity below its request; no stacking even though still full
        (
            "1536Mi",
            {"db-0": bound("1536Mi", "1Gi"), "db-1": bound("1536Mi")},
            {"db-0": fill(99)},
            True,
            Action.WAIT,
            "1536Mi",
            "db-0",
        ),
        # in flight: a claim not patched yet (a crash between the status write and the patch)
        (
            "1536Mi",
            {"db-0": bound("1536Mi"), "db-1": bound("1Gi")},
            {"db-0": fill(99)},
            True,
            Action.WAIT,
            "1536Mi",
            "db-0",
        ),
        # a class that does not allow expansion: refused
        (None, TWO, {"db-0": fill(90)}, False, Action.REFUSED, "1Gi", "db-0"),
        # the spec raised past the decided size: the spec is the base
        (
            "1536Mi",
            {"db-0": bound("3Gi"), "db-1": bound("3Gi")},
            {"db-0": fill(90)},
            True,
            Action.GROW,
            "4Gi",
            "db-0",
        ),
    ],
)
def test_plan(
    decided: str | None,
    claims: dict[str, Claim],
    fills: dict[str, Fill],
    expandable: bool | None,
    action: Action,
    size: str,
    member: str | None,
) -> None:
    p = plan("1Gi", AUTO, decided, claims, fills, expandable)
    assert (p.action, p.size, p.member) == (action, size, member)
    if action is Action.GROW:
        assert p.pending == tuple(sorted(claims))  # every member grows to the same size
        assert p.size != p.current


def test_plan_reports_every_full_member_and_the_condition() -> None:
    p = plan("1Gi", AUTO, None, TWO, {"db-0": fill(85), "db-1": fill(92)})
    assert p.full == ("db-1", "db-0")
    assert p.condition == (True, "Growing")
    assert "db-1 92%, db-0 85%" in p.message
    assert plan("4Gi", AUTO, None, {"db-0": bound("4Gi")}, {"db-0": fill(90)}).condition == (
        False,
        "MaximumReached",
    )


def test_a_quantity_increment_and_rounding() -> None:
    auto = Autogrow(threshold=80, increment="100Mi", maximum="10Gi")
    assert next_size("1Gi", auto) == "1124Mi"
    assert next_size("10200Mi", auto) == "10Gi"  # 10300Mi is past the maximum (10240Mi): capped
    assert next_size("1Gi", Autogrow(increment="10%", maximum="10Gi")) == "1127Mi"  # 1126.4 rounded up
    assert format_size(2 * GI) == "2Gi"


def test_never_shrinks() -> None:
    assert wanted_size("1Gi", "2Gi") == "2Gi"
    assert wanted_size("3Gi", "2Gi") == "3Gi"
    assert wanted_size("1Gi", None) == "1Gi"
    # a claim bigger than anything decided (grown by hand) is the base, never reduced
    p = plan("1Gi", AUTO, None, {"db-0": bound("2Gi"), "db-1": bound("2Gi")}, {"db-0": fill(10)})
    assert (p.action, p.size) == (Action.NONE, "2Gi")


def test_unmeasurable_volume_does_not_count() -> None:
    p = plan("1Gi", AUTO, None, TWO, {"db-0": Fill(0, 0)})
    assert p.action is Action.NONE


@pytest.mark.parametrize(
    ("claims", "running", "restarted", "want"),
    [
        ({"db-0": bound("2Gi")}, {"db-0": False}, [], ["db-0"]),  # grown, engine down: restart
        ({"db-0": bound("2Gi")}, {"db-0": True}, [], []),  # engine running: leave it
        ({"db-0": bound("2Gi", "1Gi")}, {"db-0": False}, [], []),  # not grown yet: wait
        ({"db-0": bound("2Gi")}, {"db-0": False}, ["db-0"], []),  # restarted once already
        ({"db-0": bound("2Gi")}, {}, [], []),  # no pod: nothing to delete
        ({"db-1": bound("2Gi")}, {"db-1": False}, [], []),  # not among the full ones: not ours to restart
    ],
)
def test_restarts(
    claims: dict[str, Claim], running: dict[str, bool], restarted: list[str], want: list[str]
) -> None:
    assert restarts("2Gi", ["db-0"], restarted, claims, running) == want


def test_a_filesystem_not_resized_yet_is_waited_for() -> None:
    """The claim says 2Gi but the member still measures its old 1Gi filesystem 99 % full: not a reason to
    grow again (the kubelet has not resized it, or the figure is from before the growth)."""
    grown = {"db-0": bound("2Gi"), "db-1": bound("2Gi")}
    old = Fill(used_bytes=99 * GI // 100, available_bytes=GI // 100, capacity_bytes=GI)
    p = plan("1Gi", AUTO, "2Gi", grown, {"db-0": old})
    assert p.action is Action.WAIT and "db-0's filesystem not grown yet" in p.message
    new = Fill(used_bytes=GI, available_bytes=GI * 9 // 10, capacity_bytes=2 * GI * 96 // 100)
    assert plan("1Gi", AUTO, "2Gi", grown, {"db-0": new}).action is Action.NONE
