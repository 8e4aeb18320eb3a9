"""MySQL GTID set algebra: properties (hypothesis, with a plain-``set`` oracle) and manual examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetrove.datastores.base import Ordering
from kubetrove.datastores.mysql.gtid import MAX_GNO, GtidSet, Tsid, compare, errant

# No deadline: a shared 2-core machine must not turn slow examples into failures (no timing asserts).
PROPERTY = settings(deadline=None, max_examples=200)

U1 = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
U2 = "2174b383-5441-11e8-b90a-c80aa9429562"
U3 = "ed102faf-eb00-11eb-8f20-0c5415bfaa1d"

# A small universe (3 uuids, 3 tags, GNOs up to 40) so random sets overlap, touch and nest often.
tsids = st.builds(Tsid, st.sampled_from([U1, U2, U3]), st.sampled_from(["", "domain_1", "_b"]))
intervals = st.tuples(st.integers(1, 40), st.integers(0, 6)).map(lambda p: (p[0], p[0] + p[1]))
gtid_sets = st.lists(st.tuples(tsids, intervals), max_size=8).map(
    lambda items: GtidSet(tuple((tsid, (iv,)) for tsid, iv in items))
)


def model(gtids: GtidSet) -> set[tuple[str, str, int]]:
    """The set as plain Python triples: the oracle the interval code must agree with."""
    return {(t.uuid, t.tag, n) for t, ivs in gtids.entries for lo, hi in ivs for n in range(lo, hi + 1)}


@st.composite
def messy_texts(draw: st.DrawFn) -> str:
    """A valid GTID set spelled the way humans and mysqld might: any case, order, spacing, overlap."""
    chunks = []
    for tsid, (lo, hi) in draw(st.lists(st.tuples(tsids, intervals), max_size=6)):
        uuid = draw(st.sampled_from([tsid.uuid, tsid.uuid.upper()]))
        tag = f":{draw(st.sampled_from([tsid.tag, tsid.tag.upper()]))}" if tsid.tag else ""
        interval = str(lo) if lo == hi else f"{lo}{draw(st.sampled_from(['-', ' - ']))}{hi}"
        chunks.append(f"{uuid}{tag}:{interval}")
    return draw(st.sampled_from([",", ",\n", " , ", ",,"])).join(chunks)


# --- properties -------------------------------------------------------------------------------


@PROPERTY
@given(gtid_sets)
def test_format_round_trips(a: GtidSet) -> None:
    assert GtidSet.parse(a.format()) == a
    assert GtidSet.parse(a.format(",")) == a
    assert GtidSet.parse(str(a)) == a


@PROPERTY
@given(messy_texts())
def test_format_is_canonical(text: str) -> None:
    canonical = GtidSet.parse(text).format()
    assert GtidSet.parse(canonical).format() == canonical
    assert canonical == canonical.lower()
    assert " " not in canonical


@PROPERTY
@given(gtid_sets, gtid_sets)
def test_operations_agree_with_the_set_oracle(a: GtidSet, b: GtidSet) -> None:
    assert model(a | b) == model(a) | model(b)
    assert model(a - b) == model(a) - model(b)
    assert model(a & b) == model(a) & model(b)
    assert a.is_subset(b) == (model(a) <= model(b))
    assert a.count() == len(model(a))


@PROPERTY
@given(gtid_sets, gtid_sets, gtid_sets)
def test_union_is_commutative_associative_idempotent(a: GtidSet, b: GtidSet, c: GtidSet) -> None:
    assert a | b == b | a
    assert (a | b) | c == a | (b | c)
    assert a | a == a
    assert a | GtidSet() == a


@PROPERTY
@given(gtid_sets, gtid_sets)
def test_subtract_and_union_restore(a: GtidSet, b: GtidSet) -> None:
    assert (a - b) | (a & b) == a
    assert (a - b) | b == a | b
    assert (a - b) & b == GtidSet()
    assert (a - a).is_empty()
    small = a & b
    assert (a - small) | small == a


@PROPERTY
@given(gtid_sets, gtid_sets)
def test_subset_laws(a: GtidSet, b: GtidSet) -> None:
    assert a.is_subset(a | b)
    assert (a & b).is_subset(a)
    assert a.is_subset(b) == (a | b == b) == (a & b == a)
    assert GtidSet().is_subset(a)


@PROPERTY
@given(gtid_sets, gtid_sets)
def test_compare_is_antisymmetric_and_matches_subsets(a: GtidSet, b: GtidSet) -> None:
    mirror = {Ordering.LESS: Ordering.GREATER, Ordering.GREATER: Ordering.LESS}
    forward = compare(a, b)
    assert compare(b, a) == mirror.get(forward, forward)
    assert (forward == Ordering.EQUAL) == (a == b)
    assert compare(a, a | b) in (Ordering.LESS, Ordering.EQUAL)
    # Errant transactions exist exactly when the replica is not at or behind the primary.
    assert errant(a, b).is_empty() == (forward in (Ordering.LESS, Ordering.EQUAL))


@PROPERTY
@given(gtid_sets, gtid_sets)
def test_comma_join_is_union(a: GtidSet, b: GtidSet) -> None:
    # The manual: "The union of two GTID sets is simply their representations as strings, joined
    # together with an interposed comma."
    assert GtidSet.parse(f"{a},{b}") == a | b


@PROPERTY
@given(gtid_sets, tsids, st.integers(1, 48))
def test_contains_agrees_with_the_oracle(a: GtidSet, tsid: Tsid, gno: int) -> None:
    assert a.contains(f"{tsid}:{gno}") == ((tsid.uuid, tsid.tag, gno) in model(a))


@PROPERTY
@given(gtid_sets, gtid_sets)
def test_count_is_inclusion_exclusion(a: GtidSet, b: GtidSet) -> None:
    assert (a | b).count() == a.count() + b.count() - (a & b).count()


# --- examples from the MySQL 8.4 manual -------------------------------------------------------


@pytest.mark.parametrize(
    ("subset", "superset", "expected"),
    [  # "Functions Used with Global Transaction Identifiers", GTID_SUBSET()
        ("3E11FA47-71CA-11E1-9E33-C80AA9429562:23", "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57", True),
        ("3E11FA47-71CA-11E1-9E33-C80AA9429562:23-25", "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57", True),
        ("3E11FA47-71CA-11E1-9E33-C80AA9429562:20-25", "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57", False),
    ],
)
def test_manual_gtid_subset(subset: str, superset: str, expected: bool) -> None:
    assert GtidSet.parse(subset).is_subset(GtidSet.parse(superset)) is expected


@pytest.mark.parametrize(
    ("minuend", "subtrahend", "expected"),
    [  # "Functions Used with Global Transaction Identifiers", GTID_SUBTRACT()
        (
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:21",
            f"{U1}:22-57",
        ),
        (
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:20-25",
            f"{U1}:26-57",
        ),
        (
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57",
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:23-24",
            f"{U1}:21-22:25-57",
        ),
        ("3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57", "3E11FA47-71CA-11E1-9E33-C80AA9429562:21-57", ""),
    ],
)
def test_manual_gtid_subtract(minuend: str, subtrahend: str, expected: str) -> None:
    assert GtidSet.parse(minuend).subtract(GtidSet.parse(subtrahend)).format() == expected


def test_manual_gtid_set_forms() -> None:
    # "GTID Format and Storage": single GTID, range, and a mix of singles and ranges.
    assert GtidSet.parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:23").count() == 1
    assert GtidSet.parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5").count() == 5
    mixed = GtidSet.parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-3:11:47-49")
    assert mixed.intervals(Tsid(U1)) == ((1, 3), (11, 11), (47, 49))
    assert mixed.format() == f"{U1}:1-3:11:47-49"


def test_manual_tagged_gtids_print_like_mysqld() -> None:
    # The manual's tagged example; mysqld prints the uuid once (MySQL bug #116789 shows the output).
    text = (
        "3E11FA47-71CA-11E1-9E33-C80AA9429562:Domain_1:1-3:15-21, "
        "3E11FA47-71CA-11E1-9E33-C80AA9429562:Domain_2:8-52"
    )
    assert GtidSet.parse(text).format() == f"{U1}:domain_1:1-3:15-21:domain_2:8-52"
    assert "ed102faf-eb00-11eb-8f20-0c5415bfaa1d:Domain_1:117" in GtidSet.parse(f"{U3}:domain_1:100-200")


def test_untagged_first_then_tags_and_uuids_sorted_with_mysqld_separator() -> None:
    gtids = GtidSet.parse(f"{U1}:tb:4, {U1.upper()}:ta:3,{U2}:9,{U1}:1-2:5-6:3-4")
    assert gtids.format() == f"{U2}:9,\n{U1}:1-6:ta:3:tb:4"
    assert gtids.tsids() == (Tsid(U2), Tsid(U1), Tsid(U1, "ta"), Tsid(U1, "tb"))


def test_parses_gtid_executed_as_the_client_shows_it() -> None:
    printed = f"{U2}:1-3,\n{U1}:1-5:7-9\n"
    assert GtidSet.parse(printed).format() == printed.strip()


def test_manual_typo_uuid_is_rejected() -> None:
    # The manual's multi-source example has a 7-digit first group; mysqld would reject it too.
    with pytest.raises(ValueError, match="invalid server uuid '24DA167-0C0C"):
        GtidSet.parse("2174B383-5441-11E8-B90A-C80AA9429562:1-3, 24DA167-0C0C-11E8-8442-00059A3C7B00:1-19")


# --- failover scenarios -------------------------------------------------------------------------


def test_errant_transactions_are_incomparable_and_named() -> None:
    primary = GtidSet.parse(f"{U1}:1-100")
    replica = GtidSet.parse(f"{U1}:1-90,{U2}:1-2")  # behind, plus two writes made on the replica
    assert compare(replica, primary) is Ordering.INCOMPARABLE
    assert errant(replica, primary).format() == f"{U2}:1-2"
    assert compare(GtidSet.parse(f"{U1}:1-90"), primary) is Ordering.LESS
    assert compare(GtidSet.parse(f"{U1}:1-101"), primary) is Ordering.GREATER
    assert compare(GtidSet.parse(f"{U1.upper()}:1-50:51-100"), primary) is Ordering.EQUAL


# --- edges and errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  \n", ",", ",,", U1, f"{U1}:tag_only", f" {U1} : 1 - 5 ,"])
def test_lenient_forms_mysqld_also_accepts(text: str) -> None:
    assert GtidSet.parse(text).count() in (0, 5)


def test_largest_gno() -> None:
    # mysqld's GNO_END (INT64_MAX) is a sentinel, not a GNO: parse_gno rejects it.
    assert GtidSet.parse(f"{U1}:9223372036854775806").count() == 1
    with pytest.raises(ValueError, match="invalid GTID interval"):
        GtidSet.parse(f"{U1}:9223372036854775807")
    top = GtidSet.parse(f"{U1}:1-{MAX_GNO}")
    assert top.count() == MAX_GNO
    assert (top | GtidSet.parse(f"{U2}:1-{MAX_GNO}")).count() == 2 * MAX_GNO  # beyond int64: fine


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("xyz:1", "invalid server uuid"),
        (f"{U1}:0", "invalid GTID interval 0-0"),
        (f"{U1}:5-3", "invalid GTID interval 5-3"),
        (f"{U1}:1-{MAX_GNO + 1}", "invalid GTID interval"),
        (f"{U1}:1-", "expected a tag or an interval"),
        (f"{U1}:-1", "expected a tag or an interval"),
        (f"{U1}:1-2-3", "expected a tag or an interval"),
        (f"{U1}:1a", "expected a tag or an interval"),
        (f"{U1}::1", "expected a tag or an interval m[-n], found ''"),
        (f"{U1}:1:", "found ''"),
        (f"{U1}:010", "expected a tag or an interval"),  # strtoll(base 0) would read octal 8
        (f"{U1}:{'t' * 33}:1", "expected a tag or an interval"),
        (f"{U1}:1;{U2}:1", "expected a tag or an interval"),
    ],
)
def test_parse_errors_say_what_and_where(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="malformed GTID set") as info:
        GtidSet.parse(text)
    assert reason in str(info.value)


def test_parse_error_quotes_long_input_briefly() -> None:
    long_text = ",".join(f"{U1}:{n}" for n in range(1, 200)) + ",oops"
    with pytest.raises(ValueError, match=r"\.\.\.' at 'oops': invalid server uuid") as info:
        GtidSet.parse(long_text)
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("gtid", [U1, f"{U1}:1-2", f"{U1}:1,{U2}:1", f"{U1}:a:b:1", "nope:1", f"{U1}:0"])
def test_contains_wants_exactly_one_gtid(gtid: str) -> None:
    with pytest.raises(ValueError, match="not a single GTID"):
        GtidSet.parse(f"{U1}:1-5").contains(gtid)


def test_constructor_normalizes_and_validates() -> None:
    built = GtidSet(((Tsid(U1.upper(), "TAG"), ((4, 6), (1, 3))), (Tsid(U2), ())))
    assert built.entries == ((Tsid(U1, "tag"), ((1, 6),)),)
    assert hash(built) == hash(GtidSet.parse(f"{U1}:tag:1-6"))
    assert repr(built) == f"GtidSet.parse('{U1}:tag:1-6')"
    with pytest.raises(ValueError, match="invalid GTID tag"):
        GtidSet(((Tsid(U1, "9x"), ((1, 1),)),))
    with pytest.raises(AttributeError):
        built.entries = ()  # type: ignore[misc]
