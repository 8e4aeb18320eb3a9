"""A stand-in for a pymongo client that answers with RECORDED MongoDB replies and records every command.

The exact commands and the 7.0/8.0 reply shapes the MongoDB Manual documents (the same paths run on real
mongod 6.0.5 in tests/integration/test_agent_mongodb*.py):
- replSetGetStatus: https://www.mongodb.com/docs/manual/reference/command/replSetGetStatus/ (the
  manual's example: set "replset", members m1/m2/m3.example.net:27017, term 3, optimes around
  Timestamp(1723763173, 1); each member has health, stateStr, optime {ts, t}, optimeDate,
  syncSourceHost, and ``self: true`` on the member that answered);
- hello: https://www.mongodb.com/docs/manual/reference/command/hello/ (isWritablePrimary, secondary,
  setName, hosts, primary, me);
- error codes: https://www.mongodb.com/docs/manual/reference/error-codes/.
Only the fields the driver reads are kept; the lagging secondary is the same set 7 s later on m3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from bson import Timestamp
from pymongo.errors import OperationFailure

HOSTS = ["m1.example.net:27017", "m2.example.net:27017", "m3.example.net:27017"]
TS = 1723763173
WALL = dt.datetime(2024, 8, 15, 23, 6, 13)
BUILD_INFO = {"version": "7.0.14", "ok": 1.0}


def member(i: int, state: str, ts: Timestamp, me: int, sync_source: str = "") -> dict[str, Any]:
    """One entry of replSetGetStatus.members as the manual shows it."""
    entry: dict[str, Any] = {
        "_id": i,
        "name": HOSTS[i],
        "health": 1,
        "state": {"PRIMARY": 1, "SECONDARY": 2}[state],
        "stateStr": state,
        "optime": {"ts": ts, "t": 3},
        "optimeDate": WALL + dt.timedelta(seconds=ts.time - TS),
        "syncSourceHost": sync_source,
    }
    if i == me:
        entry["self"] = True
    return entry


def repl_status(me: int, lagging_seconds: int = 0) -> dict[str, Any]:
    """The 3-member set seen from member ``me``: m1 primary, m2 secondary, m3 secondary (maybe behind)."""
    primary_ts = Timestamp(TS + lagging_seconds, 1)
    return {
        "set": "replset",
        "myState": 1 if me == 0 else 2,
        "term": 3,
        "members": [
            member(0, "PRIMARY", primary_ts, me),
            member(1, "SECONDARY", primary_ts, me, HOSTS[0]),
            member(2, "SECONDARY", Timestamp(TS, 1), me, HOSTS[1]),
        ],
        "ok": 1.0,
    }


def hello(me: int) -> dict[str, Any]:
    """hello from member ``me`` of that set."""
    return {
        "isWritablePrimary": me == 0,
        "secondary": me != 0,
        "setName": "replset",
        "hosts": HOSTS,
        "primary": HOSTS[0],
        "me": HOSTS[me],
        "ok": 1.0,
    }


STANDALONE_HELLO = {"isWritablePrimary": True, "maxWireVersion": 21, "ok": 1.0}

Reply = Mapping[str, Any] | Callable[[Mapping[str, Any]], Mapping[str, Any]] | OperationFailure


def failure(code: int, message: str) -> OperationFailure:
    """The exception pymongo raises for ``{ok: 0, code, errmsg}``."""
    return OperationFailure(message, code, {"ok": 0.0, "errmsg": message, "code": code})


class RecordedClient:
    """``client[db].command(cmd)`` answered from ``replies`` by command name; ``sent`` lists (db, cmd)."""

    def __init__(self, replies: Mapping[str, Reply]) -> None:
        self.replies = dict(replies)
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __getitem__(self, db: str) -> _Database:
        return _Database(self, db)

    def close(self) -> None:
        """Nothing to close."""

    def names(self) -> list[str]:
        """The command names sent so far, in order."""
        return [next(iter(cmd)) for _, cmd in self.sent]


class _Database:
    def __init__(self, client: RecordedClient, name: str) -> None:
        self.client, self.name = client, name

    def command(self, cmd: Mapping[str, Any]) -> Mapping[str, Any]:
        self.client.sent.append((self.name, dict(cmd)))
        name = next(iter(cmd))
        reply = self.client.replies.get(name, {"ok": 1.0})
        if isinstance(reply, OperationFailure):
            raise reply
        return reply(cmd) if callable(reply) else reply
