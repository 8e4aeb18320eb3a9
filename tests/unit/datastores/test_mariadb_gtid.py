"""MariaDB GTID positions: per-domain partial order (hypothesis) and Knowledge Base examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrove.datastores.base import Ordering
from kubetrove.datastores.mariadb.gtid import MAX_SEQ_NO, Gtid, GtidPosition, compare

PROPERTY = settings(deadline=None, max_examples=300)  # no deadline: no timing asserts on a busy box
MIRROR = {Ordering.LESS: Ordering.GREATER, Ordering.GREATER: Ordering.LESS}

# Few domains, servers and sequence numbers so that ties, forks and missing domains are common.
gtids = st.builds(Gtid, st.integers(0, 3), st.integers(1, 3), st.integers(0, 6))
positions = st.lists(gtids, max_size=4, unique_by=lambda g: g.domain_id).map(
    lambda items: GtidPosition(tuple(items))
)


def seqs(position: GtidPosition) -> dict[int, int]:
    return {gtid.domain_id: gtid.seq_no for gtid in position.gtids}


@PROPERTY
@given(positions)
def test_format_round_trips(position: GtidPosition) -> None:
    assert GtidPosition.parse(position.format()) == position
    assert GtidPosition.parse(str(position)) == position


@PROPERTY
@given(st.lists(gtids, max_size=4, unique_by=lambda g: g.domain_id), st.sampled_from([",", ", ", ",\n"]))
def test_format_is_canonical_whatever_the_order(items: list[Gtid], separator: str) -> None:
    canonical = GtidPosition.parse(separator.join(str(g) for g in items)).format()
    reordered = GtidPosition.parse(separator.join(str(g) for g in reversed(items))).format()
    assert canonical == reordered == GtidPosition.parse(canonical).format()
    domains = [int(item.split("-")[0]) for item in canonical.split(",") if item]
    assert domains == sorted(domains)


@PROPERTY
@given(positions, positions)
def test_compare_is_antisymmetric(a: GtidPosition, b: GtidPosition) -> None:
    forward = compare(a, b)
    assert compare(b, a) == MIRROR.get(forward, forward)
    assert compare(a, a) is Ordering.EQUAL


@PROPERTY
@given(positions, positions, positions)
def test_less_is_transitive(a: GtidPosition, b: GtidPosition, c: GtidPosition) -> None:
    if compare(a, b) is Ordering.LESS and compare(b, c) is Ordering.LESS:
        assert compare(a, c) is Ordering.LESS


@PROPERTY
@given(positions, positions)
def test_compare_means_every_domain_agrees(a: GtidPosition, b: GtidPosition) -> None:
    sa, sb = seqs(a), seqs(b)
    behind = [sa.get(d, 0) < sb.get(d, 0) for d in sa.keys() | sb.keys()]
    ahead = [sa.get(d, 0) > sb.get(d, 0) for d in sa.keys() | sb.keys()]
    verdict = compare(a, b)
    if verdict is Ordering.LESS:
        assert any(behind)
        assert not any(ahead)
    if verdict is Ordering.GREATER:
        assert any(ahead)
        assert not any(behind)
    if verdict is Ordering.EQUAL:
        assert not any(behind)
        assert not any(ahead)
    if any(behind) and any(ahead):
        assert verdict is Ordering.INCOMPARABLE


@PROPERTY
@given(positions, positions)
def test_server_id_never_orders_only_forks(a: GtidPosition, b: GtidPosition) -> None:
    # Rewrite every server_id of b to a's: the verdict may only move from INCOMPARABLE, never
    # between LESS/EQUAL/GREATER, because seq_no alone orders a domain.
    servers = {gtid.domain_id: gtid.server_id for gtid in a.gtids}
    b_same = GtidPosition(
        tuple(Gtid(g.domain_id, servers.get(g.domain_id, g.server_id), g.seq_no) for g in b.gtids)
    )
    if compare(a, b) is not Ordering.INCOMPARABLE:
        assert compare(a, b) == compare(a, b_same)


# --- examples: the Knowledge Base format and failover situations --------------------------------


def test_kb_gtid_example() -> None:
    # KB "Global Transaction ID": 0-1-10 is domain 0, server_id 1, sequence number 10.
    assert Gtid.parse("0-1-10") == Gtid(domain_id=0, server_id=1, seq_no=10)
    assert GtidPosition.parse("0-1-10").format() == "0-1-10"


def test_multi_domain_position_sorted_by_domain() -> None:
    position = GtidPosition.parse("1-2-50,\n0-1-100")
    assert position.format() == "0-1-100,1-2-50"
    assert position.domains() == {0: Gtid(0, 1, 100), 1: Gtid(1, 2, 50)}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("0-1-100", "0-1-100", Ordering.EQUAL),
        ("0-1-99", "0-1-100", Ordering.LESS),
        ("0-2-101", "0-1-100", Ordering.GREATER),  # new primary (server 2) continued the domain
        ("0-1-100,1-2-50", "0-1-100,1-2-60", Ordering.LESS),
        ("0-1-100,1-2-60", "0-1-90,1-2-50", Ordering.GREATER),
        ("0-1-100,1-2-50", "0-1-90,1-2-60", Ordering.INCOMPARABLE),  # domains disagree
        ("0-1-100", "0-1-100,1-2-1", Ordering.LESS),  # a missing domain counts as seq_no 0
        ("", "0-1-1", Ordering.LESS),
        ("", "", Ordering.EQUAL),
        ("0-1-101", "0-2-101", Ordering.INCOMPARABLE),  # same seq_no, different server: diverged
        ("0-1-101,1-1-5", "0-2-101,1-1-9", Ordering.INCOMPARABLE),
        ("0-1-0", "0-2-0", Ordering.EQUAL),  # seq_no 0 names no transaction
        ("0-1-0", "", Ordering.EQUAL),
    ],
)
def test_compare_examples(a: str, b: str, expected: Ordering) -> None:
    assert compare(GtidPosition.parse(a), GtidPosition.parse(b)) is expected


def test_limits() -> None:
    top = f"{2**32 - 1}-{2**32 - 1}-{MAX_SEQ_NO}"
    assert GtidPosition.parse(top).format() == top
    assert GtidPosition.parse("").is_empty()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0-1", "expected domain_id-server_id-seq_no"),
        ("0-1-2-3", "expected domain_id-server_id-seq_no"),
        ("a-b-c", "expected domain_id-server_id-seq_no"),
        ("-1-1-1", "expected domain_id-server_id-seq_no"),
        ("0 - 1 - 2", "expected domain_id-server_id-seq_no"),
        ("0-1-2,,1-1-2", "expected domain_id-server_id-seq_no"),
        ("0-1-2;1-1-2", "expected domain_id-server_id-seq_no"),
        (f"{2**32}-1-1", "domain_id 4294967296 out of range"),
        (f"0-{2**32}-1", "server_id 4294967296 out of range"),
        (f"0-1-{2**64}", "seq_no 18446744073709551616 out of range"),
        ("0-1-5,0-2-7", "two GTIDs for domain 0"),
    ],
)
def test_parse_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="malformed MariaDB GTID position") as info:
        GtidPosition.parse(text)
    assert reason in str(info.value)
