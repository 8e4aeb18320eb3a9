"""PostgreSQL LSNs: byte positions in one WAL stream, totally ordered.

A log sequence number is a 64-bit byte offset into the write-ahead log, printed as two hex
numbers ``hi/lo`` (``16/B374D848`` is ``0x16 << 32 | 0xB374D848``). Unlike MySQL GTID sets or
MariaDB per-domain positions, LSNs of one cluster history form a **total order**: a larger LSN
has replayed more WAL, and the difference is exactly how many bytes behind a standby is
(``pg_wal_lsn_diff``). So ``compare`` never answers INCOMPARABLE.

The catch failover must handle elsewhere: LSNs only compare meaningfully on the **same
timeline**. After a promotion the new primary starts timeline N+1 at its switch point; an old
primary that wrote past that point has a larger LSN yet diverged, and needs pg_rewind, not
promotion. That check needs the timeline history (``pg_control_checkpoint()``, the
``.history`` files), so it belongs to the strategy, not to this arithmetic.

References (PostgreSQL 18 documentation):
- pg_lsn type: https://www.postgresql.org/docs/current/datatype-pg-lsn.html
- pg_wal_lsn_diff and friends: https://www.postgresql.org/docs/current/functions-admin.html
- Parser/printer we mirror: ``src/backend/utils/adt/pg_lsn.c`` (``pg_lsn_in_internal``:
  1 to 8 hex digits, "/", 1 to 8 hex digits, nothing else, no whitespace; ``pg_lsn_out``:
  ``"%X/%X"``). PostgreSQL 19 zero-pads the low half (``"%X/%08X"``, commit 2633dae); both parse here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubetrove.datastores.base import Ordering

MAX_LSN = 2**64 - 1  # "FFFFFFFF/FFFFFFFF", the largest pg_lsn

# Exactly pg_lsn_in_internal's grammar (strspn over hex digits, 1..8 each side); ASCII only, so
# no \s and no Unicode digits sneak in through re's defaults.
_LSN_RE = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})", re.ASCII)


@dataclass(frozen=True, order=True)
class Lsn:
    """A PostgreSQL WAL position; ordered like pg_lsn, subtract two for a byte distance."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value <= MAX_LSN:
            raise ValueError(f"LSN {self.value} out of range 0..{MAX_LSN}")

    @classmethod
    def parse(cls, text: str) -> Lsn:
        """Parse ``hi/lo`` as pg_lsn_in does; raise ValueError if malformed."""
        match = _LSN_RE.fullmatch(text)
        if match is None:
            raise ValueError(f"malformed PostgreSQL LSN {text!r}: expected X/X with 1-8 hex digits each")
        return cls(int(match.group(1), 16) << 32 | int(match.group(2), 16))

    def format(self) -> str:
        """The text PostgreSQL 15-18 print (``%X/%X``, upper-case, no padding)."""
        return f"{self.value >> 32:X}/{self.value & 0xFFFFFFFF:X}"

    def __str__(self) -> str:
        return self.format()

    def __sub__(self, other: Lsn) -> int:
        """Bytes from ``other`` to ``self`` (negative if behind), like ``self - other`` in SQL."""
        return self.value - other.value


def parse_lsn(text: str) -> int:
    """Parse an LSN to its integer byte position (``hi << 32 | lo``)."""
    return Lsn.parse(text).value


def format_lsn(value: int) -> str:
    """Format an integer byte position as PostgreSQL prints it."""
    return Lsn(value).format()


def diff(a: Lsn, b: Lsn) -> int:
    """``pg_wal_lsn_diff(a, b)``: bytes from ``b`` to ``a``; positive when ``a`` is ahead."""
    return a - b


def compare(a: Lsn, b: Lsn) -> Ordering:
    """Order ``a`` relative to ``b``; LSNs are totally ordered, so never INCOMPARABLE."""
    if a == b:
        return Ordering.EQUAL
    return Ordering.LESS if a < b else Ordering.GREATER
