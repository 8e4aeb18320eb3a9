"""MariaDB GTID positions: per-domain values, compared per domain, and why that is a partial order.

MariaDB's GTID is ``domain_id-server_id-seq_no`` (e.g. ``0-1-10``), not MySQL's uuid set. A
server's position (``@@gtid_current_pos``, ``@@gtid_slave_pos``) holds **the last GTID of each
replication domain**, at most one per domain: ``0-1-100,1-2-50``. Within one domain, ``seq_no``
grows with every event group the domain's writer logs, so two GTIDs of the same domain are
ordered by ``seq_no``; the ``server_id`` only says which server logged it, and changes
legitimately after a failover (``0-1-100`` then ``0-2-101`` on the new primary).

Across domains there is no order: domains are independent streams (multi-source replication or
several writers each with its own ``gtid_domain_id``). So positions are only **partially
ordered**, as MySQL GTID sets are:

- every domain of ``a`` at or behind ``b`` (and one strictly behind): ``Ordering.LESS``;
- every domain equal: ``EQUAL``; every domain at or ahead, one strictly ahead: ``GREATER``;
- ahead in one domain and behind in another, or **diverged** in a domain (same ``seq_no``
  logged by different servers, see ``_compare_domain``): ``INCOMPARABLE``. Failover must not pick
  such a member blindly: it has transactions the others lack, so it is neither a safe candidate
  nor a safe replica of the chosen one.

A missing domain counts as ``seq_no`` 0 (nothing replicated from that domain yet).

Limits: a position is a summary. Two servers can diverge *below* their last GTIDs (the old
primary logged ``0-1-101`` which nobody received, the new primary logged ``0-2-101..105``): the
positions ``0-1-101`` and ``0-2-105`` compare as LESS, yet the old primary cannot simply follow
the new one. Only the binlogs show that: the primary refuses such a replica when it connects
(ER_GTID_POSITION_NOT_FOUND_IN_BINLOG, the requested GTID "is not in the master's binlog"), and
``gtid_strict_mode`` keeps out-of-order seq_nos from being logged at all. So comparison is
necessary, not sufficient.

References (MariaDB Knowledge Base):
- Global Transaction ID (format, domains, gtid_current_pos, gtid_strict_mode):
  https://mariadb.com/kb/en/gtid/
- MASTER_GTID_WAIT (diverged servers: "two different GTIDs with the same seq_no (in the same
  domain)"): https://mariadb.com/kb/en/master_gtid_wait/
- mariadb-operator does the same per-domain comparison: ``pkg/replication/gtid.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from kubetrove.datastores.base import Ordering

MAX_DOMAIN_ID = 2**32 - 1  # domain_id and server_id are 32-bit unsigned (mysql.gtid_slave_pos)
MAX_SERVER_ID = 2**32 - 1
MAX_SEQ_NO = 2**64 - 1  # seq_no is 64-bit unsigned

# Decimal numbers without a sign; whitespace around the dashes is refused (the server never
# prints it), whitespace around whole GTIDs is tolerated.
_GTID_RE = re.compile(r"([0-9]+)-([0-9]+)-([0-9]+)")


@dataclass(frozen=True, order=True)
class Gtid:
    """One MariaDB GTID ``domain_id-server_id-seq_no``."""

    domain_id: int
    server_id: int
    seq_no: int

    def __post_init__(self) -> None:
        for name, value, top in (
            ("domain_id", self.domain_id, MAX_DOMAIN_ID),
            ("server_id", self.server_id, MAX_SERVER_ID),
            ("seq_no", self.seq_no, MAX_SEQ_NO),
        ):
            if not 0 <= value <= top:
                raise ValueError(f"GTID {name} {value} out of range 0..{top}")

    @classmethod
    def parse(cls, text: str) -> Gtid:
        """Parse ``domain-server-seq``; raise ValueError if malformed or out of range."""
        match = _GTID_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"malformed MariaDB GTID {text!r}: expected domain_id-server_id-seq_no")
        return cls(*(int(group) for group in match.groups()))

    def __str__(self) -> str:
        return f"{self.domain_id}-{self.server_id}-{self.seq_no}"


@dataclass(frozen=True)
class GtidPosition:
    """An immutable MariaDB GTID position: the last GTID of each domain, sorted by domain."""

    # Invariant (checked in __post_init__): sorted by domain_id, at most one GTID per domain.
    gtids: tuple[Gtid, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.gtids, key=lambda gtid: gtid.domain_id))
        for previous, current in pairwise(ordered):
            if previous.domain_id == current.domain_id:
                # gtid_current_pos/gtid_slave_pos never repeat a domain; gtid_binlog_state does
                # (one per server_id) but is a different thing and not a position.
                raise ValueError(f"two GTIDs for domain {current.domain_id}: {previous} and {current}")
        object.__setattr__(self, "gtids", ordered)

    @classmethod
    def parse(cls, text: str) -> GtidPosition:
        """Parse a position like ``0-1-100,1-2-50`` (empty text is the empty position)."""
        try:
            return cls(tuple(Gtid.parse(item) for item in _split(text)))
        except ValueError as err:
            raise ValueError(f"malformed MariaDB GTID position {text!r}: {err}") from None

    def format(self) -> str:
        """The canonical text: GTIDs sorted by domain, joined by "," (as the server accepts)."""
        return ",".join(str(gtid) for gtid in self.gtids)

    def __str__(self) -> str:
        return self.format()

    def domains(self) -> dict[int, Gtid]:
        """The GTID of each domain, keyed by domain_id."""
        return {gtid.domain_id: gtid for gtid in self.gtids}

    def is_empty(self) -> bool:
        """True for the empty position ("", e.g. a server that never logged a GTID)."""
        return not self.gtids


def _split(text: str) -> list[str]:
    """Split on commas, tolerating surrounding whitespace and newlines; "" has no items."""
    stripped = text.strip()
    return [item.strip() for item in stripped.split(",")] if stripped else []


def _compare_domain(a: Gtid | None, b: Gtid | None) -> Ordering:
    """Order two GTIDs of the same domain (None: the domain is absent, i.e. seq_no 0)."""
    seq_a = a.seq_no if a is not None else 0
    seq_b = b.seq_no if b is not None else 0
    if seq_a != seq_b:
        return Ordering.LESS if seq_a < seq_b else Ordering.GREATER
    # Same seq_no but logged by different servers: two *different* transactions carry the same
    # number in this domain, so the servers' histories forked (typically an old primary kept
    # writing after a new one was promoted). Neither contains the other; MariaDB calls this
    # diverged (KB MASTER_GTID_WAIT; gtid_strict_mode exists to stop it). Reporting EQUAL would
    # let failover treat a forked member as a perfect copy, so it is INCOMPARABLE.
    # seq_no 0 names no transaction (it is where a domain starts), so its server_id is moot;
    # ignoring it keeps "absent" and "seq 0" interchangeable and the order transitive.
    if a is not None and b is not None and seq_a > 0 and a.server_id != b.server_id:
        return Ordering.INCOMPARABLE
    return Ordering.EQUAL


def compare(a: GtidPosition, b: GtidPosition) -> Ordering:
    """Order ``a`` relative to ``b`` domain by domain; INCOMPARABLE if domains disagree."""
    mine, theirs = a.domains(), b.domains()
    verdicts = {_compare_domain(mine.get(d), theirs.get(d)) for d in mine.keys() | theirs.keys()}
    verdicts.discard(Ordering.EQUAL)
    # No domain differs: EQUAL. One kind of difference: that is the answer. Both LESS and
    # GREATER, or any INCOMPARABLE domain: INCOMPARABLE.
    if not verdicts:
        return Ordering.EQUAL
    return verdicts.pop() if len(verdicts) == 1 else Ordering.INCOMPARABLE
