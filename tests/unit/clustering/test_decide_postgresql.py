"""decide() on PostgreSQL states, with LSN positions and the strategy's own comparison.

The member shapes are what the PostgreSQL agent reports (agent/engines/postgresql.py): a standby is a
REPLICA with replay and receive LSNs; a primary with streaming standbys is PRIMARY, one without is
STANDALONE (a fresh ordinal 0, or an ex-primary back after its pod was deleted).
"""

from __future__ import annotations

from kubetrove.api.common import Engine
from kubetrove.clustering.decide import Action, Decision, State, decide
from kubetrove.clustering.snapshot import ClusterView, MemberView, Role
from kubetrove.datastores.registry import REGISTRY

compare = REGISTRY[Engine.POSTGRESQL].compare_positions


def member(pod: str, role: Role, lsn: str | None, **kw: object) -> MemberView:
    fields: dict[str, object] = {"role": role, "read_only": role is Role.REPLICA, "position": lsn, **kw}
    return MemberView(pod=pod, index=int(pod[-1]), reachable=True, healthy=True, **fields)  # type: ignore[arg-type]


def standby(
    pod: str, replay: str, receive: str, src: str | None = "pg-0", running: bool = True
) -> MemberView:
    return member(
        pod, Role.REPLICA, replay, received_position=receive, source=src, replication_running=running
    )


def gone(pod: str, seconds: float = 30.0) -> MemberView:
    return MemberView(pod=pod, index=int(pod[-1]), reachable=False, down_for_seconds=seconds)


def view(*members: MemberView, current: str | None = "pg-0") -> ClusterView:
    return ClusterView(members=members, current_primary=current)


def test_new_cluster_adopts_ordinal_zero_whose_clones_already_stream() -> None:
    # The start script cloned pg-1 and pg-2 from pg-0 before anything was recorded.
    v = view(member("pg-0", Role.PRIMARY, "0/3000060"), standby("pg-1", "0/3000060", "0/3000060"),
             standby("pg-2", "0/3000060", "0/3000060"), current=None)  # fmt: skip
    assert decide(v, compare) == Decision(
        State.BOOTSTRAP, Action.BOOTSTRAP, target="pg-0", reasons=("adopting",)
    )


def test_ordinal_zero_is_adopted_while_the_others_still_clone_from_it() -> None:
    # The only writable member is the one the others clone from: no need to wait for them.
    v = view(member("pg-0", Role.STANDALONE, "0/3000060"), gone("pg-1", 0.0), current=None)
    assert decide(v, compare) == Decision(
        State.BOOTSTRAP, Action.BOOTSTRAP, target="pg-0", reasons=("adopting",)
    )


def test_failover_promotes_the_standby_that_received_most() -> None:
    # Replay LSNs say pg-1; receive LSNs (what a synchronous commit waited for) say pg-2.
    v = view(gone("pg-0"), standby("pg-1", "0/5000100", "0/5000100", running=False),
             standby("pg-2", "0/5000000", "0/5000200", running=False))  # fmt: skip
    assert decide(v, compare) == Decision(State.FAILOVER, Action.FAILOVER, primary="pg-0", target="pg-2")


def test_an_ex_primary_back_as_a_writable_standalone_is_repointed_not_errant() -> None:
    # Its pod was deleted and recreated: it runs on the old timeline, behind the new primary's LSN.
    # LSNs cannot show the fork; set_source makes its pod rewind it (pg_rewind decides, not the LSN).
    v = view(member("pg-0", Role.STANDALONE, "0/5000100"), member("pg-1", Role.PRIMARY, "0/6000000"),
             standby("pg-2", "0/6000000", "0/6000000", src="pg-1"), current="pg-1")  # fmt: skip
    d = decide(v, compare)
    assert (d.state, d.action, d.configure, d.errant) == (State.DEGRADED, Action.CONFIGURE, ("pg-0",), ())


def test_an_ex_primary_ahead_of_the_new_primary_is_errant() -> None:
    # Observed after the primary (I5): more WAL than the primary can only be writes it never had.
    v = view(member("pg-0", Role.STANDALONE, "0/7000000"), member("pg-1", Role.PRIMARY, "0/6000000"),
             standby("pg-2", "0/6000000", "0/6000000", src="pg-1"), current="pg-1")  # fmt: skip
    d = decide(v, compare)
    assert d.errant == ("pg-0",) and "pg-0" not in d.configure


def test_a_standby_still_following_the_old_primary_is_repointed() -> None:
    old = standby("pg-2", "0/6000000", "0/6000000", src="pg-0", running=False)
    v = view(gone("pg-0", 0.0), member("pg-1", Role.PRIMARY, "0/6000000"), old, current="pg-1")
    d = decide(v, compare)
    assert (d.state, d.action, d.configure) == (State.DEGRADED, Action.CONFIGURE, ("pg-2",))
