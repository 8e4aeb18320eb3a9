"""MongoDB replication positions: an oplog entry's timestamp, ``<seconds>:<increment>``.

The agent reports a member's last applied optime as ``<seconds>:<inc>`` (``Timestamp(1700000000, 3)``
-> ``1700000000:3``); ``<seconds>.<inc>`` is accepted too. Timestamps are totally ordered (seconds,
then increment). The election term is left out on purpose: a new primary's first timestamp is later
than anything the old one wrote, so within one replica set the timestamp alone orders members.
https://www.mongodb.com/docs/manual/reference/bson-types/#timestamps
"""

from __future__ import annotations

import re

from kubetrove.datastores.base import Ordering

_OPTIME = re.compile(r"([0-9]{1,10})[:.]([0-9]{1,10})", re.ASCII)
U32 = 2**32 - 1


def parse(text: str) -> tuple[int, int]:
    """(seconds, increment) of ``text``; ValueError when malformed or out of the 32-bit range."""
    m = _OPTIME.fullmatch(text)
    if m is None or int(m.group(1)) > U32 or int(m.group(2)) > U32:
        raise ValueError(f"malformed MongoDB optime {text!r}: expected <seconds>:<increment>")
    return int(m.group(1)), int(m.group(2))


def compare(a: str, b: str) -> Ordering:
    """Order optime ``a`` relative to ``b`` (a total order: never INCOMPARABLE)."""
    x, y = parse(a), parse(b)
    if x == y:
        return Ordering.EQUAL
    return Ordering.LESS if x < y else Ordering.GREATER
