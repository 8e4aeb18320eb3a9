"""MySQL GTID sets: an immutable value type and the partial order that failover decides on.

A MySQL server names every committed transaction ``source_uuid:n`` (MySQL 8.3+ also
``source_uuid:tag:n``) and remembers *which* of them it has applied as a GTID set, printed in
``@@gtid_executed`` as ``3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7-9,<newline>uuid2:1-3``. A
position here is therefore a *set*, not a number, and sets are only **partially ordered** by
inclusion:

- replica ⊂ primary: the replica is behind (``Ordering.LESS``); it can catch up from the primary;
- replica = primary: in sync (``EQUAL``);
- replica ⊃ primary: the replica is ahead (``GREATER``), e.g. it received transactions the dead
  primary never acknowledged to us;
- neither: the replica holds **errant transactions** (``INCOMPARABLE``), GTIDs the primary never
  had (someone wrote to a replica, or a split brain). Promoting such a member, or pointing it at a
  new primary, silently diverges data: with auto-positioning the new primary will never send the
  missing GTIDs and the errant ones live on. Failover must refuse it (moco's
  ``ErrErrantTransactions``); ``errant(replica, primary)`` names the offending GTIDs for the
  status condition.

Design: a GTID set maps each *tsid* (uuid plus optional tag; a tagged GTID is "treated as part of
the UUID" by the manual) to a sorted tuple of disjoint, non-adjacent, inclusive intervals. That
canonical form makes structural equality equal set equality, so ``==``, ``hash`` and
``format()`` agree with what mysqld prints. All operations are pure and return new values.
Hand-written rather than a dependency: python-mysql-replication has a GtidSet, but it pulls in a
binlog client and does not print mysqld's canonical form.

References (MySQL 8.4 Reference Manual):
- GTID format and storage, GTID set syntax, tags:
  https://dev.mysql.com/doc/refman/8.4/en/replication-gtids-concepts.html
- GTID_SUBSET() / GTID_SUBTRACT(): https://dev.mysql.com/doc/refman/8.4/en/gtid-functions.html
- Errant transactions and failover:
  https://dev.mysql.com/doc/refman/8.4/en/replication-gtids-failover.html
- Parser and printer we mirror: ``sql/rpl_gtid_set.cc`` (``Gtid_set::add_gtid_text``,
  ``Gtid_set::to_string`` with ``default_string_format``) in mysql-server 8.4.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from kubetrove.datastores.base import Ordering

# mysqld's GNO_END is INT64_MAX and is itself not a valid GNO (parse_gno rejects ret >= GNO_END).
MAX_GNO = 2**63 - 2
# mysqld prints ",\n" between uuids in @@gtid_executed and in GTID_SUBTRACT() results.
MYSQLD_SEPARATOR = ",\n"

# Matched after lower-casing: uuids are case-insensitive, mysqld prints them lower-case.
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Tag grammar from the manual: [a-z_][a-z0-9_]{0,31}, case-insensitive, stored lower-case.
_TAG_RE = re.compile(r"[a-z_][a-z0-9_]{0,31}")
# "m" or "m-n"; mysqld skips whitespace around the dash. Leading zeros are refused on purpose:
# mysqld parses GNOs with strtoll(base=0), where "010" would mean 8, so such input is ambiguous.
_INTERVAL_RE = re.compile(r"(0|[1-9][0-9]*)(?:\s*-\s*(0|[1-9][0-9]*))?")

Interval = tuple[int, int]  # inclusive [start, end], 1 <= start <= end <= MAX_GNO
Intervals = tuple[Interval, ...]  # canonical: sorted, disjoint, never adjacent (end + 1 < next start)


class Tsid(NamedTuple):
    """A transaction source id: server uuid plus optional tag ("" means untagged)."""

    # Field order matters: tuples sort by (uuid, tag), which is mysqld's print order, and the
    # untagged "" sorts before every tag, as mysqld prints untagged intervals first.
    uuid: str
    tag: str = ""

    def __str__(self) -> str:
        return f"{self.uuid}:{self.tag}" if self.tag else self.uuid


def _normalize(intervals: Iterable[Interval]) -> Intervals:
    """Sort and merge overlapping or adjacent intervals into canonical form."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        # Adjacent intervals merge too (1-3 and 4-5 are 1-5), as in Gtid_set::add_gno_interval.
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def _subtract(a: Intervals, b: Intervals) -> Intervals:
    """Canonical intervals of ``a`` minus ``b`` (both canonical)."""
    out: list[Interval] = []
    j = 0
    for start, end in a:
        # b's intervals that end before this one starts can never matter again (a is sorted).
        while j < len(b) and b[j][1] < start:
            j += 1
        cursor = start
        k = j
        while k < len(b) and b[k][0] <= end and cursor <= end:
            if b[k][0] > cursor:
                out.append((cursor, b[k][0] - 1))
            cursor = max(cursor, b[k][1] + 1)
            k += 1
        if cursor <= end:
            out.append((cursor, end))
    # Pieces are separated by a non-empty interval of b or a gap of a: already canonical.
    return tuple(out)


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    """Canonical intervals common to ``a`` and ``b`` (both canonical), by a merge walk."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            out.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _check_tsid(tsid: Tsid) -> Tsid:
    """Validate a tsid and return it lower-cased (the canonical spelling)."""
    uuid, tag = tsid.uuid.lower(), tsid.tag.lower()
    if not _UUID_RE.fullmatch(uuid):
        raise ValueError(f"invalid server uuid {tsid.uuid!r}: expected hhhhhhhh-hhhh-hhhh-hhhh-hhhhhhhhhhhh")
    if tag and not _TAG_RE.fullmatch(tag):
        raise ValueError(
            f"invalid GTID tag {tsid.tag!r}: a letter or '_' then up to 31 letters, digits or '_'"
        )
    return Tsid(uuid, tag)


def _check_interval(start: int, end: int) -> Interval:
    """Validate one inclusive interval of transaction numbers."""
    # mysqld silently drops a reversed interval ("5-3"); we refuse it, since it can only come
    # from a bug on our side and dropping it would hide transactions from the failover check.
    if not 1 <= start <= end <= MAX_GNO:
        raise ValueError(f"invalid GTID interval {start}-{end}: need 1 <= start <= end <= {MAX_GNO}")
    return (start, end)


@dataclass(frozen=True)
class GtidSet:
    """An immutable MySQL GTID set in canonical form (compare with ``==``, print with ``format``)."""

    # Invariant (restored by __post_init__ whatever the caller passed): sorted by tsid, one entry
    # per tsid, tsids lower-case and valid, no empty interval tuples, intervals canonical.
    entries: tuple[tuple[Tsid, Intervals], ...] = ()

    def __post_init__(self) -> None:
        grouped: dict[Tsid, list[Interval]] = {}
        for tsid, intervals in self.entries:
            checked = [_check_interval(start, end) for start, end in intervals]
            grouped.setdefault(_check_tsid(tsid), []).extend(checked)
        canonical = tuple(
            (tsid, _normalize(intervals)) for tsid, intervals in sorted(grouped.items()) if intervals
        )
        object.__setattr__(self, "entries", canonical)

    @classmethod
    def parse(cls, text: str) -> GtidSet:
        """Parse a GTID set as mysqld prints or accepts it; raise ValueError if malformed."""
        entries: list[tuple[Tsid, Intervals]] = []
        # Like mysqld, tolerate whitespace/newlines between tokens and empty specs between commas.
        for chunk in text.split(","):
            parts = [part.strip() for part in chunk.split(":")]
            if parts == [""]:
                continue
            try:
                tsid = _check_tsid(Tsid(parts[0]))
                # After the uuid come tags and intervals; a tag applies to the intervals after it.
                for part in parts[1:]:
                    if _TAG_RE.fullmatch(part.lower()):
                        tsid = Tsid(tsid.uuid, part.lower())
                        continue
                    match = _INTERVAL_RE.fullmatch(part)
                    if match is None:
                        raise ValueError(f"expected a tag or an interval m[-n], found {part!r}")
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) is not None else start
                    entries.append((tsid, (_check_interval(start, end),)))
            except ValueError as err:
                # gtid_executed can be kilobytes long: quote at most 200 characters, as mysqld does.
                shown = text if len(text) <= 200 else f"{text[:200]}..."
                raise ValueError(f"malformed GTID set {shown!r} at {chunk.strip()!r}: {err}") from None
        # A bare uuid or a tag without intervals adds nothing, exactly as in mysqld.
        return cls(tuple(entries))

    def format(self, separator: str = MYSQLD_SEPARATOR) -> str:
        """The canonical text, byte for byte what mysqld prints for ``@@gtid_executed``."""
        # One uuid, then each of its tsids in order: untagged intervals first, then ":tag:..."
        # per tag, e.g. "uuid:1-3:domain_1:1-3:15-21" (Gtid_set::to_string).
        groups: dict[str, list[str]] = {}
        for tsid, intervals in self.entries:
            texts = [f"{start}-{end}" if end > start else str(start) for start, end in intervals]
            groups.setdefault(tsid.uuid, []).extend(([tsid.tag] if tsid.tag else []) + texts)
        return separator.join(":".join([uuid, *items]) for uuid, items in groups.items())

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"GtidSet.parse({self.format(',')!r})"

    def tsids(self) -> tuple[Tsid, ...]:
        """The (uuid, tag) sources present in this set, in canonical order."""
        return tuple(tsid for tsid, _ in self.entries)

    def intervals(self, tsid: Tsid) -> Intervals:
        """The canonical intervals of one source (empty if absent)."""
        return dict(self.entries).get(_check_tsid(tsid), ())

    def union(self, other: GtidSet) -> GtidSet:
        """Every GTID in either set (the manual's union: join the two texts with a comma)."""
        # __post_init__ merges the duplicate tsids, so concatenation is the whole algorithm.
        return GtidSet(self.entries + other.entries)

    def subtract(self, other: GtidSet) -> GtidSet:
        """The GTIDs of this set that are not in ``other``, like GTID_SUBTRACT(self, other)."""
        theirs = dict(other.entries)
        return GtidSet(tuple((t, _subtract(ivs, theirs.get(t, ()))) for t, ivs in self.entries))

    def intersection(self, other: GtidSet) -> GtidSet:
        """The GTIDs present in both sets."""
        theirs = dict(other.entries)
        return GtidSet(tuple((t, _intersect(ivs, theirs.get(t, ()))) for t, ivs in self.entries))

    __or__ = union
    __sub__ = subtract
    __and__ = intersection

    def is_subset(self, other: GtidSet) -> bool:
        """True if every GTID of this set is in ``other``, like GTID_SUBSET(self, other)."""
        return self.subtract(other).is_empty()

    def is_empty(self) -> bool:
        """True for the empty set (mysqld prints it as "")."""
        return not self.entries

    def contains(self, gtid: str) -> bool:
        """True if the single GTID ``uuid:n`` or ``uuid:tag:n`` is in this set."""
        parts = [part.strip() for part in gtid.split(":")]
        number = _INTERVAL_RE.fullmatch(parts[-1])
        if len(parts) not in (2, 3) or number is None or number.group(2) is not None:
            raise ValueError(f"not a single GTID (uuid:n or uuid:tag:n): {gtid!r}")
        try:
            tsid = _check_tsid(Tsid(*parts[:-1]))
            gno, _ = _check_interval(int(parts[-1]), int(parts[-1]))
        except ValueError as err:
            raise ValueError(f"not a single GTID {gtid!r}: {err}") from None
        return any(low <= gno <= high for low, high in self.intervals(tsid))

    def __contains__(self, gtid: object) -> bool:
        return isinstance(gtid, str) and self.contains(gtid)

    def count(self) -> int:
        """How many transactions the set names (can exceed 2**63 across uuids)."""
        return sum(end - start + 1 for _, intervals in self.entries for start, end in intervals)


def compare(a: GtidSet, b: GtidSet) -> Ordering:
    """Order ``a`` relative to ``b`` by inclusion; INCOMPARABLE means errant transactions."""
    a_in_b, b_in_a = a.is_subset(b), b.is_subset(a)
    if a_in_b and b_in_a:
        return Ordering.EQUAL
    if a_in_b:
        return Ordering.LESS
    if b_in_a:
        return Ordering.GREATER
    return Ordering.INCOMPARABLE


def errant(replica: GtidSet, primary: GtidSet) -> GtidSet:
    """The GTIDs the replica executed that the primary lacks (empty when safe to follow it)."""
    # Same as the manual's check GTID_SUBTRACT(replica_executed, primary_executed): anything left
    # was never written through the primary, so it must be removed or injected as empty
    # transactions on the primary before the replica may follow it or be promoted.
    return replica.subtract(primary)
