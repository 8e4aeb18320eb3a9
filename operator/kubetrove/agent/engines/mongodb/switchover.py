"""MongoDB switchover and positions: ``replSetStepUp`` (promote), ``replSetStepDown`` (fence), and this
member's applied optime (the agent's position ``"<ts.time>:<ts.inc>"``).

The set elects (https://www.mongodb.com/docs/manual/core/replica-set-elections/): promote only asks a
secondary to call an election, which the voters may refuse; fence steps the primary down, so it
refuses writes and does not stand for election for ``FENCE_SECONDS``. Not ``fsyncLock``: that makes
writes *wait* (not fail) and is meant for backups. A standalone has neither: 501.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from kubetrove.agent.engines.base import BadRequest, Conflict, EngineUnavailable, Unsupported
from kubetrove.agent.engines.mongodb.errors import NOT_WRITABLE_PRIMARY, CommandFailed

FENCE_SECONDS = 60

Document = Mapping[str, Any]


class Commands(Protocol):
    """What these functions need of the driver: one command, and one that tolerates some error codes."""

    def command(self, db: str, cmd: Document) -> Any: ...

    def try_command(self, db: str, cmd: Document, *ok_codes: int) -> Any: ...


def format_position(ts: Any) -> str:
    """An oplog ``bson.Timestamp`` as the agent's position string ``"<time>:<inc>"``."""
    return f"{ts.time}:{ts.inc}"


def parse_position(position: str) -> tuple[int, int]:
    """``"<time>:<inc>"`` -> a tuple that orders like the oplog; BadRequest if malformed."""
    seconds, sep, inc = position.partition(":")
    if not (sep and seconds.isdigit() and inc.isdigit()):
        raise BadRequest(f"a MongoDB position is '<seconds>:<increment>', not {position!r}")
    return int(seconds), int(inc)


def set_member_hello(d: Commands) -> Document:
    """``hello`` of a replica-set member; Unsupported (501) on a standalone."""
    hello: Document = d.command("admin", {"hello": 1})
    if not hello.get("setName"):
        raise Unsupported("not a replica-set member: a standalone mongod has no election to take part in")
    return hello


def promote(d: Commands) -> None:
    """replSetStepUp on a secondary (it calls an election); nothing to do on the primary.

    The voters may refuse it ("Election failed.", seen on 6.0.5 under w:majority writes: a voter
    ahead of the candidate does not vote for it): 409, a refusal for now, and the caller asks again.
    The failed attempt has still raised the term, so the old primary steps down and the set holds
    an ordinary election a few seconds later."""
    if set_member_hello(d).get("isWritablePrimary"):
        return
    try:
        d.command("admin", {"replSetStepUp": 1})
    except CommandFailed as exc:
        if "Election failed" not in str(exc):
            raise
        raise Conflict(str(exc)) from exc


def fence(d: Commands) -> None:
    """replSetStepDown on the primary; already fenced (not writable primary) is success."""
    from pymongo.errors import AutoReconnect

    if not set_member_hello(d).get("isWritablePrimary"):
        return
    try:
        d.try_command("admin", {"replSetStepDown": FENCE_SECONDS}, NOT_WRITABLE_PRIMARY)
    except EngineUnavailable as exc:
        # Before 4.2 a step-down closed every connection, ours included: that is success.
        if not isinstance(exc.__cause__, AutoReconnect):
            raise


def applied_position(d: Commands) -> tuple[int, int]:
    """This member's applied optime as (seconds, increment)."""
    rs = d.command("admin", {"replSetGetStatus": 1})
    me = next(m for m in rs["members"] if m.get("self"))
    return me["optime"]["ts"].time, me["optime"]["ts"].inc


def wait_for_position(d: Commands, position: str, timeout_seconds: float) -> bool:
    """Poll our applied optime until it reaches ``position``; False when the timeout passes first."""
    set_member_hello(d)
    wanted = parse_position(position)
    return poll(lambda: applied_position(d) >= wanted, timeout_seconds)


def poll(reached: Callable[[], bool], timeout_seconds: float, interval: float = 0.2) -> bool:
    """Call ``reached`` until it is true (True) or the deadline passes (False); at least once."""
    deadline = time.monotonic() + timeout_seconds
    while not reached():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
