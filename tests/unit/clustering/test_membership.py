"""membership.plan as a table: one literal row per situation of an engine-elected set (MongoDB)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kubetrove.clustering.membership import Plan, SetState, plan
from kubetrove.clustering.snapshot import ClusterView, MemberView, Role

P, R, U = Role.PRIMARY, Role.REPLICA, Role.UNKNOWN
DOWN = None  # unreachable
ALL_ROLES = {"db-0": "replica", "db-1": "primary", "db-2": "replica"}


def view(*roles: Role | None) -> ClusterView:
    members = tuple(
        MemberView(f"db-{i}", i, reachable=False)
        if role is None
        else MemberView(f"db-{i}", i, reachable=True, healthy=True, role=role)
        for i, role in enumerate(roles)
    )
    return ClusterView(members, current_primary=None)


@pytest.mark.parametrize(
    ("roles", "settled", "state", "primary", "ask"),
    [
        # No set yet (uninitiated members report role unknown).
        ((U, U, U), None, SetState.INITIATING, None, "db-0"),
        ((U, DOWN, U), None, SetState.WAITING, None, None),  # M3: every member must answer
        ((DOWN, U, U), None, SetState.WAITING, None, None),
        # The set elected db-1: report it and send it the membership (M1, M2).
        ((R, P, R), None, SetState.HEALTHY, "db-1", "db-1"),
        ((R, P, R), "db-1", SetState.HEALTHY, "db-1", None),  # M4: settled, not asked again
        ((R, P, R), "db-0", SetState.HEALTHY, "db-1", "db-1"),  # settled by an older primary: ask
        ((R, P, DOWN), None, SetState.DEGRADED, "db-1", "db-1"),
        ((U, P, R), None, SetState.DEGRADED, "db-1", "db-1"),  # db-0 still syncing / not added yet
        # A set without a primary: an election, or a lost majority. Nobody is promoted (M1).
        ((R, R, R), None, SetState.NO_PRIMARY, None, None),
        ((R, DOWN, DOWN), None, SetState.NO_PRIMARY, None, None),
        ((R, U, U), None, SetState.NO_PRIMARY, None, None),  # never initiated again beside a set (M3)
        # Two members say primary (the old one has not seen the newer term yet): nothing moves.
        ((P, P, R), None, SetState.SEVERAL_PRIMARIES, None, None),
    ],
)
def test_plan_table(
    roles: tuple[Role | None, ...], settled: str | None, state: SetState, primary: str | None, ask: str | None
) -> None:
    p = plan(view(*roles), settled)
    assert (p.state, p.primary, p.ask) == (state, primary, ask)
    assert bool(p.roles) == (primary is not None)  # labels only follow a known primary


def test_labels_name_the_elected_primary_and_every_other_member_replica() -> None:
    assert plan(view(R, P, DOWN)).roles == {"db-0": "replica", "db-1": "primary", "db-2": "replica"}
    assert plan(view(R, P, R)).roles == ALL_ROLES


def test_reasons_say_what_is_missing() -> None:
    assert plan(view(U, DOWN, DOWN)).reasons == ("waiting for members to answer: db-1, db-2",)
    assert plan(view(U, P, DOWN)).reasons == (
        "db-0 is not a secondary yet (role unknown)",
        "db-2 is unreachable",
    )
    several = plan(view(P, P, R))
    assert (
        several == Plan(SetState.SEVERAL_PRIMARIES, reasons=several.reasons)
        and "db-0, db-1" in several.reasons[0]
    )


def test_spec_primary_names_a_healthy_secondary_to_step_up_and_nothing_else() -> None:
    healthy = replace(view(R, P, R), wanted_primary="db-0")
    p = plan(healthy)
    assert (p.state, p.primary, p.step_up) == (SetState.HEALTHY, "db-1", "db-0")
    assert p.reasons == ("switchover: spec.primary asks db-0 to stand for election (primary: db-1)",)
    assert plan(replace(view(R, P, R), wanted_primary="db-1")).step_up is None  # already primary
    assert plan(replace(view(R, P, DOWN), wanted_primary="db-0")).step_up is None  # degraded: wait
    assert plan(replace(view(R, R, R), wanted_primary="db-0")).step_up is None  # an election is on
    assert plan(replace(view(R, P, R), wanted_primary="db-7")).step_up is None  # not a member
