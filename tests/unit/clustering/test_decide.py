"""decide() tables: one literal ClusterView per scenario, one expected Decision.

Positions here are sets of transaction names ("a,b,c"), partially ordered by inclusion: the same algebra
as MySQL GTID sets, small enough to read at a glance.
"""

from __future__ import annotations

import dataclasses

import pytest

from kubetrove.clustering.decide import Action, Decision, State, decide, rank
from kubetrove.clustering.snapshot import ClusterView, MemberView, Role
from kubetrove.datastores.base import Ordering


def setcmp(a: str, b: str) -> Ordering:
    sa, sb = set(filter(None, a.split(","))), set(filter(None, b.split(",")))
    if sa == sb:
        return Ordering.EQUAL
    if sa < sb:
        return Ordering.LESS
    if sa > sb:
        return Ordering.GREATER
    return Ordering.INCOMPARABLE


def primary(pod: str = "db-0", pos: str = "a,b,c", **kw: object) -> MemberView:
    fields: dict[str, object] = {"role": Role.PRIMARY, "read_only": False, "position": pos, **kw}
    return MemberView(pod=pod, index=int(pod[-1]), reachable=True, healthy=True, **fields)  # type: ignore[arg-type]


def replica(pod: str, pos: str = "a,b,c", received: str | None = None, src: str = "db-0") -> MemberView:
    return MemberView(
        pod=pod,
        index=int(pod[-1]),
        reachable=True,
        healthy=True,
        role=Role.REPLICA,
        read_only=True,
        position=pos,
        received_position=received,
        source=src,
        replication_running=True,
    )


def down(m: MemberView, seconds: float = 30.0) -> MemberView:
    return MemberView(pod=m.pod, index=m.index, reachable=False, down_for_seconds=seconds)


def view(*members: MemberView, current: str | None = "db-0", **kw: object) -> ClusterView:
    return ClusterView(members=members, current_primary=current, **kw)  # type: ignore[arg-type]


HEALTHY = view(primary(), replica("db-1"), replica("db-2"))


def test_healthy_cluster_needs_nothing() -> None:
    assert decide(HEALTHY, setcmp) == Decision(State.HEALTHY, primary="db-0")


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        pytest.param(
            view(primary(), replica("db-1"), replica("db-2", src="db-1")),
            Decision(State.DEGRADED, Action.CONFIGURE, primary="db-0", configure=("db-2",)),
            id="replica-pointing-elsewhere-is-repointed",
        ),
        pytest.param(
            view(primary(read_only=True), replica("db-1"), replica("db-2")),
            Decision(State.DEGRADED, Action.CONFIGURE, primary="db-0"),
            id="read-only-primary-is-made-writable (restart mid-failover, I1)",
        ),
        pytest.param(
            view(primary(), replica("db-1"), MemberView("db-2", 2, True, True, Role.PRIMARY, False, "a,b")),
            Decision(State.DEGRADED, Action.CONFIGURE, primary="db-0", configure=("db-2",)),
            id="old-primary-with-subset-rejoins-as-replica",
        ),
    ],
)
def test_primary_up_configures(cluster: ClusterView, expected: Decision) -> None:
    assert decide(cluster, setcmp) == expected


def test_errant_replica_is_quarantined_not_configured() -> None:
    cluster = view(primary(pos="a,b,c"), replica("db-1"), replica("db-2", pos="a,b,x", src="db-0"))
    assert decide(cluster, setcmp) == Decision(
        State.DEGRADED,
        primary="db-0",
        errant=("db-2",),
        reasons=("db-2 holds errant transactions; rebuild it",),
    )


def test_replica_ahead_of_primary_is_errant() -> None:
    # observe reads replicas before the primary, so "ahead" cannot be a timing artefact (I5).
    cluster = view(primary(pos="a,b"), replica("db-1", pos="a,b,c"), replica("db-2", pos="a,b"))
    assert decide(cluster, setcmp).errant == ("db-1",)


def test_old_primary_with_errant_writes_is_not_rejoined() -> None:
    old = MemberView("db-0", 0, True, True, Role.PRIMARY, False, "a,b,z")
    cluster = view(old, primary("db-1", pos="a,b,c"), replica("db-2", src="db-1"), current="db-1")
    d = decide(cluster, setcmp)
    assert d.errant == ("db-0",)
    assert "db-0" not in d.configure


def test_an_ex_primary_ahead_is_rejoined_where_the_engine_rewinds() -> None:
    # PostgreSQL: the deleted primary came back with its shutdown checkpoint beyond what the new primary
    # had written yet; pg_rewind takes that tail away on rejoin, so it is repointed, not quarantined.
    old = MemberView("db-0", 0, True, True, Role.PRIMARY, False, "a,b,z")
    members = (old, primary("db-1", pos="a,b,c"), replica("db-2", src="db-1"))
    d = decide(view(*members, current="db-1", rejoin_rewinds=True), setcmp)
    assert d.errant == () and "db-0" in d.configure
    # A failed rewind still quarantines it (the agent reports it diverged).
    failed = MemberView("db-0", 0, True, True, Role.PRIMARY, False, "a,b,z", diverged=True)
    members = (failed, primary("db-1", pos="a,b,c"), replica("db-2", src="db-1"))
    assert decide(view(*members, current="db-1", rejoin_rewinds=True), setcmp).errant == ("db-0",)


def test_primary_down_waits_for_the_detection_threshold() -> None:
    cluster = view(down(primary(), seconds=2), replica("db-1"), replica("db-2"), detection_seconds=5)
    assert decide(cluster, setcmp) == Decision(
        State.PRIMARY_DOWN, primary="db-0", reasons=("primary db-0 unreachable for 2s",)
    )


def test_failover_picks_the_replica_that_received_most() -> None:
    cluster = view(
        down(primary()), replica("db-1", pos="a,b", received="a,b,c"), replica("db-2", pos="a,b,c")
    )
    # db-1 received c (it will apply it); db-2 applied c: equal holdings, the lower index wins (I6).
    assert decide(cluster, setcmp) == Decision(State.FAILOVER, Action.FAILOVER, primary="db-0", target="db-1")


def test_failover_never_picks_a_replica_lacking_writes() -> None:
    cluster = view(down(primary()), replica("db-1", pos="a"), replica("db-2", pos="a", received="a,b"))
    assert decide(cluster, setcmp).target == "db-2"


def test_no_failover_when_an_acknowledged_write_may_be_only_on_an_unreachable_replica() -> None:
    cluster = view(down(primary()), replica("db-1"), down(replica("db-2")), ack_count=1)
    d = decide(cluster, setcmp)
    assert d.state is State.LOST and d.action is Action.NONE
    assert d.reasons == (
        "primary db-0 is down and 1 replica(s) are unreachable (db-2); "
        "an acknowledged write may exist only there",
    )


def test_five_members_with_two_acks_tolerate_one_unknown_replica() -> None:
    members = (
        down(primary()),
        replica("db-1"),
        replica("db-2", received="a,b,c,d"),
        replica("db-3"),
        down(replica("db-4")),
    )
    d = decide(view(*members, ack_count=2), setcmp)
    assert (d.state, d.target) == (State.FAILOVER, "db-2")


def test_incomparable_candidates_mean_no_failover() -> None:
    cluster = view(down(primary()), replica("db-1", pos="a,b"), replica("db-2", pos="a,c"))
    d = decide(cluster, setcmp)
    assert d.state is State.LOST
    assert "incomparable" in d.reasons[0]


def test_quarantined_member_is_never_a_candidate() -> None:
    members = (down(primary()), replica("db-1", pos="a,b,c,d"), replica("db-2"), replica("db-3"))
    cluster = view(*members, errant=frozenset({"db-1"}), ack_count=2)
    # db-1 holds more, but it is known errant: db-2 (lowest index of the rest) is chosen.
    assert decide(cluster, setcmp).target == "db-2"


def test_failover_disabled_stays_lost() -> None:
    cluster = view(down(primary()), replica("db-1"), replica("db-2"), automatic_failover=False)
    assert decide(cluster, setcmp).state is State.LOST


def test_switchover_to_eligible_member() -> None:
    cluster = view(primary(), replica("db-1"), replica("db-2"), wanted_primary="db-2")
    assert decide(cluster, setcmp) == Decision(
        State.SWITCHOVER, Action.SWITCHOVER, primary="db-0", target="db-2"
    )


def test_switchover_to_down_member_is_refused_with_a_reason() -> None:
    cluster = view(primary(), replica("db-1"), down(replica("db-2")), wanted_primary="db-2")
    d = decide(cluster, setcmp)
    assert d.action is not Action.SWITCHOVER
    assert "switchover to db-2 not possible: it is missing, down or errant" in d.reasons


def test_switchover_to_a_member_not_streaming_from_the_primary_configures_it_first() -> None:
    """A rebuilt (empty, standalone) member is repointed before it can take over: switching to it at
    once would fence the primary for the whole wait and abort, cycle after cycle (seen on MySQL)."""
    empty = MemberView(
        pod="db-2", index=2, reachable=True, healthy=True, role=Role.STANDALONE, read_only=True
    )
    d = decide(view(primary(), replica("db-1"), empty, wanted_primary="db-2"), setcmp)
    assert (d.state, d.action, d.configure) == (State.DEGRADED, Action.CONFIGURE, ("db-2",))
    assert "switchover to db-2 waits until it replicates from the primary" in d.reasons
    stopped = dataclasses.replace(replica("db-2"), replication_running=False)
    d = decide(view(primary(), replica("db-1"), stopped, wanted_primary="db-2"), setcmp)
    assert (d.action, d.configure) == (Action.CONFIGURE, ("db-2",))


def test_bootstrap_waits_for_every_member() -> None:
    cluster = view(replica("db-0", src=""), down(replica("db-1")), replica("db-2", src=""), current=None)
    assert decide(cluster, setcmp) == Decision(
        State.BOOTSTRAP, reasons=("waiting for members to start: db-1",)
    )


def test_bootstrap_fresh_cluster_picks_lowest_index() -> None:
    fresh = [MemberView(f"db-{i}", i, True, True, Role.STANDALONE, False, None) for i in range(3)]
    # Three fresh writable standalones: none is adopted (ambiguous), the lowest index wins the ranking.
    assert decide(view(*fresh, current=None), setcmp) == Decision(
        State.BOOTSTRAP, Action.BOOTSTRAP, target="db-0"
    )


def test_bootstrap_picks_most_advanced_when_data_exists() -> None:
    ms = [
        MemberView(f"db-{i}", i, True, True, Role.REPLICA, True, p) for i, p in enumerate(["a", "a,b", "a"])
    ]
    assert decide(view(*ms, current=None), setcmp).target == "db-1"


def test_bootstrap_adopts_the_single_writable_primary() -> None:
    cluster = view(replica("db-0", src="db-1"), primary("db-1"), replica("db-2", src="db-1"), current=None)
    assert decide(cluster, setcmp).target == "db-1"


def test_rank_is_deterministic_and_requires_domination() -> None:
    ms = [replica("db-2", pos="a,b"), replica("db-1", pos="a,b"), replica("db-0", pos="a")]
    best, _ = rank(ms, setcmp)
    assert best is not None and best.pod == "db-1"
    best, why = rank([replica("db-0", pos="a,b"), replica("db-1", pos="c")], setcmp)
    assert best is None and "incomparable" in why


def test_writable_primary_reported_standalone_is_healthy() -> None:
    # MariaDB reports "standalone" for a primary whose replicas are momentarily disconnected.
    standalone = MemberView("db-0", 0, True, True, Role.STANDALONE, False, "a,b,c")
    assert decide(view(standalone, replica("db-1"), replica("db-2")), setcmp).state is State.HEALTHY


def test_errant_member_counts_as_unknown_for_acknowledgements() -> None:
    # db-2 is quarantined: it may have acknowledged a write db-1 lacks, so no failover with ack_count 1.
    cluster = view(down(primary()), replica("db-1"), replica("db-2"), errant=frozenset({"db-2"}))
    assert decide(cluster, setcmp).state is State.LOST


def test_a_replica_its_source_refused_as_diverged_is_errant_whatever_the_positions_say() -> None:
    # MariaDB positions keep only the last GTID per domain: an ex-primary that kept 0-1-215 which nobody
    # received compares LESS than the new primary's 0-2-900; only the source's refusal shows it.
    refused = MemberView("db-0", 0, True, True, Role.REPLICA, True, "a", source="db-1", diverged=True)
    cluster = view(refused, primary("db-1", pos="a,b,c"), replica("db-2", src="db-1"), current="db-1")
    d = decide(cluster, setcmp)
    assert d.errant == ("db-0",) and "db-0" not in d.configure
    assert "db-0 holds errant transactions; rebuild it" in d.reasons


def test_a_rebuilt_errant_member_is_released_and_configured() -> None:
    # Its PVC and pod were deleted: it came back with an empty data directory.
    empty = MemberView("db-2", 2, True, True, Role.STANDALONE, True, "")
    d = decide(view(primary(), replica("db-1"), empty, errant=frozenset({"db-2"})), setcmp)
    assert (d.errant, d.configure, d.action) == ((), ("db-2",), Action.CONFIGURE)
    # A fresh clone (PostgreSQL's empty member clones before it starts) streams from the primary, behind it.
    clone = replica("db-2", pos="a,b")
    assert decide(view(primary(), replica("db-1"), clone, errant=frozenset({"db-2"})), setcmp).errant == ()


@pytest.mark.parametrize(
    "quarantined",
    [
        # Replication stopped by the quarantine: a LESS position proves nothing (MariaDB keeps only the
        # last GTID per domain; a history that diverged below it compares LESS).
        MemberView("db-2", 2, True, True, Role.REPLICA, True, "a,b", source="db-0"),
        # Streaming again but refused as diverged.
        MemberView("db-2", 2, True, True, Role.REPLICA, True, "a", source="db-0", diverged=True),
        # Unreachable: nothing is known.
        MemberView("db-2", 2, False),
    ],
)
def test_an_errant_member_stays_errant_until_visibly_rebuilt(quarantined: MemberView) -> None:
    d = decide(view(primary(), replica("db-1"), quarantined, errant=frozenset({"db-2"})), setcmp)
    assert d.errant == ("db-2",) and "db-2" not in d.configure


# -- I7: automatic rebuild of a quarantined member -------------------------------------------------------


def errant_view(**kw: object) -> ClusterView:
    """db-2 holds "x", which the primary never had, and was quarantined in an earlier cycle."""
    members = kw.pop("members", (primary(), replica("db-1"), replica("db-2", pos="a,b,x")))
    fields: dict[str, object] = {"errant": frozenset({"db-2"}), "rebuild_errant": True, **kw}
    return view(*members, **fields)  # type: ignore[arg-type]


def test_a_quarantined_member_is_rebuilt_from_the_up_writable_primary() -> None:
    d = decide(errant_view(), setcmp)
    assert (d.state, d.errant, d.rebuild, d.primary) == (State.DEGRADED, ("db-2",), ("db-2",), "db-0")
    assert "db-2" not in d.configure  # never repointed while errant (I5)


def test_no_rebuild_before_the_quarantine_was_recorded_or_where_not_allowed() -> None:
    assert decide(errant_view(errant=frozenset()), setcmp).rebuild == ()  # found now: quarantined first
    assert decide(errant_view(rebuild_errant=False), setcmp).rebuild == ()  # engine or spec says no


def test_no_rebuild_while_one_runs_or_just_failed() -> None:
    running = dataclasses.replace(replica("db-2", pos="a,b,x"), rebuilding=True)
    failed = dataclasses.replace(replica("db-2", pos="a,b,x"), rebuild_error="clone failed")
    for m in (running, failed):
        d = decide(errant_view(members=(primary(), replica("db-1"), m)), setcmp)
        assert (d.errant, d.rebuild) == (("db-2",), ())
    d = decide(errant_view(members=(primary(), replica("db-1"), failed)), setcmp)
    assert any("its rebuild failed: clone failed" in r for r in d.reasons)


def test_no_rebuild_from_a_primary_that_is_not_writable_or_during_a_switchover() -> None:
    fenced = primary(read_only=True)
    assert (
        decide(errant_view(members=(fenced, replica("db-1"), replica("db-2", pos="a,b,x"))), setcmp).rebuild
        == ()
    )
    switching = decide(errant_view(wanted_primary="db-1"), setcmp)
    assert (switching.action, switching.rebuild) == (Action.SWITCHOVER, ())
    # A spec.primary left naming the errant member (it was the primary before a failover): the switchover
    # is impossible until it is rebuilt, so it must not block the rebuild.
    stale = decide(errant_view(wanted_primary="db-2"), setcmp)
    assert (stale.action, stale.rebuild) == (Action.NONE, ("db-2",))
    down_primary = errant_view(members=(down(primary()), replica("db-1"), replica("db-2", pos="a,b,x")))
    assert decide(down_primary, setcmp).rebuild == ()


def test_a_rebuilt_member_streaming_from_the_primary_is_no_longer_errant() -> None:
    d = decide(errant_view(members=(primary(), replica("db-1"), replica("db-2", pos="a,b"))), setcmp)
    assert (d.errant, d.rebuild) == ((), ())


def test_a_member_being_rebuilt_is_not_taken_for_an_empty_one() -> None:
    # Seen on real 9.7.4: while CLONE INSTANCE runs, the recipient's gtid_executed reads empty.
    cloning = dataclasses.replace(replica("db-2", pos=""), rebuilding=True, replication_running=False)
    d = decide(errant_view(members=(primary(), replica("db-1"), cloning)), setcmp)
    assert (d.errant, d.rebuild, d.configure) == (("db-2",), (), ())
