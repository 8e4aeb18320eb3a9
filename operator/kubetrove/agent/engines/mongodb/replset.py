"""The replica-set configuration documents the MongoDB driver sends (pure; unit-tested on literals).

- ``initiate_config``: the ``replSetInitiate`` document for a set that does not exist yet: every wanted
  member at once, ``_id`` = the caller's id (the StatefulSet ordinal), ``SETTINGS`` (the election
  timeout, below), defaults for everything else (priority 1, one vote). https://www.mongodb.com/docs/manual/reference/command/replSetInitiate/
- ``next_step``: from the config ``replSetGetConfig`` returned, the next ``replSetReconfig`` document
  towards the wanted members, or None when the set already has exactly them.

Invariants of ``next_step``:
- at most ONE member is added or removed per step: MongoDB refuses a (non-forced) reconfiguration that
  adds or removes more than one voting member (https://www.mongodb.com/docs/manual/reference/command/
  replSetReconfig/); the caller applies the step and asks again;
- removals come before additions: a stale member (a scaled-away pod, or a host the id now names
  differently) is dropped first, which also frees its ``_id`` and lowers the majority the set needs;
- ``version`` is the current one + 1; every other field (settings, the remaining members' priority,
  votes, tags) is passed through untouched, so kubetrove never undoes a setting it does not manage.
  The ``term`` field is passed through as read: the primary ignores a term in a reconfig;
- members are matched by ``host`` (what the other members dial), never by ``_id`` alone.
- mongod may raise ``version`` by itself in between: a member added by a reconfig carries an internal
  ``newlyAdded`` flag (no vote) until it caught up, then the primary reconfigures to clear it (4.4+;
  seen on 6.0.5). ``replSetGetConfig`` hides the flag, so the config read back is what we pass on.

``majority_lost``: the reason a removal must not be sent. The new config must keep a healthy majority
of its voting members (healthy: ``replSetGetStatus`` health 1 and PRIMARY, SECONDARY or ARBITER), or the
set can neither elect nor commit a majority write after it. mongod 6.0.5 refuses such a reconfig itself
("Quorum check failed because not enough voting nodes responded"), but only after trying to reach the
members; the agent says why first, in a sentence the operator reports as is.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubetrove.agent.protocol import SetMember

Document = Mapping[str, Any]
MAX_MEMBER_ID = 255  # members[n]._id is an integer 0-255
# Set when the set is created (a later reconfig passes ``settings`` through untouched). Measured on
# mongod 6.0.5, 3 members on loopback, primary SIGKILLed (tests/integration/test_failover_mongodb.py):
# a new primary was writable 3.0-3.2 s after the kill with 3000 ms and 2.1-2.4 s with 2000 (so about
# the timeout plus 0.1-0.3 s); the client's write gap was 15.4 s p50 with the default 10000 and 9.8 s
# with 5000. A secondary calls an election when it has not heard from the
# primary for this long; heartbeats go out every 2 s (heartbeatIntervalMillis), so at 2000 a single
# late heartbeat (a paused or CPU-starved primary on a busy node) already starts a needless election,
# each one a write outage. 3000 leaves one and a half heartbeat intervals of slack and meets the
# failover goal (client write gap p50 <= 5 s; benchmarks/failover.py). Other settings stay MongoDB's:
# catchUpTimeoutMillis -1 (a new primary first takes what the most up-to-date secondary has), which
# w:"majority" writers never need and w:1 writers are better off with.
# https://www.mongodb.com/docs/manual/reference/replica-configuration/#mongodb-rsconf-rsconf.settings.electionTimeoutMillis
ELECTION_TIMEOUT_MS = 3000
SETTINGS: dict[str, Any] = {"electionTimeoutMillis": ELECTION_TIMEOUT_MS}


@dataclass(frozen=True)
class Step:
    """One reconfiguration: the new config document and the member it adds or removes."""

    config: dict[str, Any]
    added: str | None = None
    removed: str | None = None


def initiate_config(set_name: str, members: Sequence[SetMember]) -> dict[str, Any]:
    """The ``replSetInitiate`` config: the set's name, every member by id (lowest first), ``SETTINGS``."""
    return {
        "_id": set_name,
        "members": [{"_id": m.id, "host": m.host} for m in sorted(members, key=lambda m: m.id)],
        "settings": dict(SETTINGS),
    }


def member_hosts(config: Document) -> list[str]:
    """The hosts of a replica-set config's members, in config order."""
    return [str(m["host"]) for m in config.get("members", [])]


def next_step(config: Document, wanted: Sequence[SetMember]) -> Step | None:
    """The next single-member reconfiguration towards ``wanted``; None when nothing differs."""
    members: list[dict[str, Any]] = [dict(m) for m in config.get("members", [])]
    wanted_hosts = {m.host for m in wanted}
    stale = [m for m in members if m["host"] not in wanted_hosts]
    present = {m["host"] for m in members}
    missing = sorted((m for m in wanted if m.host not in present), key=lambda m: m.id)
    new = copy.deepcopy(dict(config))
    new["version"] = int(config["version"]) + 1
    if stale:
        gone = max(stale, key=lambda m: int(m["_id"]))  # the highest id: what a scale-down removed
        new["members"] = [m for m in members if m is not gone]
        return Step(new, removed=str(gone["host"]))
    if missing:
        add = missing[0]
        new["members"] = [*members, {"_id": _free_id(add.id, members), "host": add.host}]
        return Step(new, added=add.host)
    return None


def majority_lost(step: Step, status: Document) -> str | None:
    """Why ``step`` (a removal) would leave the set without a healthy voting majority; None if it does not."""
    if step.removed is None:
        return None
    up = {
        str(m["name"])
        for m in status.get("members", [])
        if m.get("health") == 1 and m.get("stateStr") in ("PRIMARY", "SECONDARY", "ARBITER")
    }
    voters = [str(m["host"]) for m in step.config["members"] if m.get("votes", 1)]
    healthy = sum(1 for h in voters if h in up)
    majority = len(voters) // 2 + 1
    if healthy >= majority:
        return None
    down = sorted(h for h in voters if h not in up)
    return (
        f"removing {step.removed} would leave {healthy} healthy voting members of {len(voters)} "
        f"(a majority is {majority}; not healthy: {', '.join(down)}): the set could not elect a primary "
        "or commit majority writes; it changes once those members are back"
    )


def _free_id(preferred: int, members: Sequence[Document]) -> int:
    """``preferred`` if no member holds it, else the lowest free id (ids are unique within a set)."""
    used = {int(m["_id"]) for m in members}
    if preferred not in used:
        return preferred
    return next(i for i in range(MAX_MEMBER_ID + 1) if i not in used)
