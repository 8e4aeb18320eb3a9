"""Recorded MongoDB replies for replica-set membership, sent through pymongo's OWN reply checking.

The replies are the documented ones (tests/integration/test_agent_mongodb_replset.py runs the same paths
on real mongod 6.0.5 replica sets; these pin the exact documents and the 7.0/8.0 reply shapes):
- hello (https://www.mongodb.com/docs/manual/reference/command/hello/): an initiated member has
  ``setName``, ``isWritablePrimary``, ``secondary``, ``primary``, ``me``; a member started with
  ``--replSet`` and not initiated answers ``isreplicaset: true`` and "Does not have a valid replica set
  config" (what drivers call an RSGhost);
- replSetGetConfig (https://www.mongodb.com/docs/manual/reference/command/replSetGetConfig/): the
  manual's example document (version 180294, term 1, members with arbiterOnly, buildIndexes, hidden,
  priority, tags, secondaryDelaySecs, votes; settings with replicaSetId), hosts renamed to pod DNS names;
- getCmdLineOpts (https://www.mongodb.com/docs/manual/reference/command/getCmdLineOpts/):
  ``parsed.replication.replSetName`` from a config file, ``parsed.replication.replSet`` from
  ``--replSet`` (mongod's jstests/repl/repl_options.js);
- replSetInitiate / replSetReconfig (https://www.mongodb.com/docs/manual/reference/command/
  replSetInitiate/, .../replSetReconfig/): ``{ok: 1}`` plus the cluster-time fields;
- errors ``{ok: 0, errmsg, code, codeName}`` with the codes of
  https://www.mongodb.com/docs/manual/reference/error-codes/: NotYetInitialized (94), AlreadyInitialized
  (23), NotWritablePrimary (10107), NewReplicaSetConfigurationIncompatible (103), NoReplicationEnabled (76).

Every reply goes through ``pymongo.helpers_shared._check_command_response``, the function pymongo's
``Database.command`` runs on a server reply: so an error is raised exactly as pymongo would raise it
(NotWritablePrimary as ``NotPrimaryError``, an AutoReconnect; the others as OperationFailure).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bson import Int64, ObjectId, Timestamp
from pymongo.helpers_shared import _check_command_response

from tests.unit.agent.recorded_mongodb import RecordedClient, _Database

SET = "rs0"
CLUSTER_TIME = {
    "$clusterTime": {"clusterTime": Timestamp(1588212091, 1)},
    "operationTime": Timestamp(1588212091, 1),
}


def host(i: int) -> str:
    """The engine address of member ``i`` as the operator passes it (headless-Service DNS)."""
    return f"db-{i}.db-headless.ns.svc:27017"


def config_member(i: int) -> dict[str, Any]:
    """One members[n] entry of replSetGetConfig, as in the manual's example."""
    return {
        "_id": i,
        "host": host(i),
        "arbiterOnly": False,
        "buildIndexes": True,
        "hidden": False,
        "priority": 1,
        "tags": {},
        "secondaryDelaySecs": Int64(0),
        "votes": 1,
    }


def get_config(ids: list[int], version: int = 180294) -> dict[str, Any]:
    """replSetGetConfig of a set whose members have these ids."""
    return {
        "config": {
            "_id": SET,
            "version": version,
            "term": 1,
            "protocolVersion": Int64(1),
            "writeConcernMajorityJournalDefault": True,
            "members": [config_member(i) for i in ids],
            "settings": {
                "chainingAllowed": True,
                "heartbeatIntervalMillis": 2000,
                "heartbeatTimeoutSecs": 10,
                "electionTimeoutMillis": 10000,
                "catchUpTimeoutMillis": -1,
                "catchUpTakeoverDelayMillis": 30000,
                "getLastErrorModes": {},
                "getLastErrorDefaults": {"w": 1, "wtimeout": 0},
                "replicaSetId": ObjectId("5eaa1e9ac4d650aa7817623d"),
            },
        },
        "ok": 1.0,
        **CLUSTER_TIME,
    }


def hello(me: int, primary: int | None, hosts: list[int]) -> dict[str, Any]:
    """hello from member ``me`` of the initiated set (``primary`` None: an election is under way)."""
    reply: dict[str, Any] = {
        "isWritablePrimary": me == primary,
        "secondary": me != primary,
        "setName": SET,
        "setVersion": 180294,
        "hosts": [host(i) for i in hosts],
        "me": host(me),
        "ok": 1.0,
    }
    if primary is not None:
        reply["primary"] = host(primary)
    return reply


def repl_status(ids: list[int], primary: int = 0, down: tuple[int, ...] = ()) -> dict[str, Any]:
    """replSetGetStatus of that set (only the fields the membership guard reads); ``down`` members as
    mongod 6.0.5 reports a killed member: health 0, "(not reachable/healthy)"."""
    members = [
        {
            "_id": i,
            "name": host(i),
            "health": 0.0 if i in down else 1.0,
            "stateStr": "(not reachable/healthy)"
            if i in down
            else "PRIMARY"
            if i == primary
            else "SECONDARY",
        }
        for i in ids
    ]
    return {"set": SET, "members": members, "ok": 1.0, **CLUSTER_TIME}


UNINITIATED_HELLO = {
    "isWritablePrimary": False,
    "secondary": False,
    "isreplicaset": True,
    "info": "Does not have a valid replica set config",
    "ok": 1.0,
}
STANDALONE_HELLO = {"isWritablePrimary": True, "maxWireVersion": 21, "ok": 1.0}
CMD_LINE_FROM_CONFIG = {
    "argv": ["mongod", "--config", "/etc/kubetrove/mongod.conf"],
    "parsed": {
        "config": "/etc/kubetrove/mongod.conf",
        "net": {"bindIpAll": True, "port": 27017},
        "replication": {"replSetName": SET},
        "security": {"authorization": "enabled", "keyFile": "/var/run/kubetrove/mongodb-keyfile"},
        "storage": {"dbPath": "/data/db"},
    },
    "ok": 1.0,
}
CMD_LINE_FROM_FLAG = {
    "argv": ["mongod", "--replSet", SET],
    "parsed": {"replication": {"replSet": SET}},
    "ok": 1.0,
}
OK = {"ok": 1.0, **CLUSTER_TIME}


def error(code: int, code_name: str, errmsg: str) -> dict[str, Any]:
    """A command failure as the server sends it."""
    return {"ok": 0.0, "errmsg": errmsg, "code": code, "codeName": code_name}


NOT_YET_INITIALIZED = error(94, "NotYetInitialized", "no replset config has been received")
ALREADY_INITIALIZED = error(23, "AlreadyInitialized", "already initialized")
NOT_WRITABLE_PRIMARY = error(
    10107,
    "NotWritablePrimary",
    "New config is rejected :: caused by :: replSetReconfig should only be run on a writable PRIMARY. "
    "Current state SECONDARY;",
)
TWO_VOTERS = error(
    103,
    "NewReplicaSetConfigurationIncompatible",
    "Non force replica set reconfig can only add or remove at most 1 voting member.",
)


class ReplayClient(RecordedClient):
    """``RecordedClient`` whose replies go through pymongo's reply checking; ``sent_doc`` for assertions."""

    def __getitem__(self, db: str) -> _CheckedDatabase:
        return _CheckedDatabase(self, db)

    def sent_doc(self, name: str) -> dict[str, Any]:
        """The last command document named ``name``."""
        return next(cmd for _, cmd in reversed(self.sent) if next(iter(cmd)) == name)


class _CheckedDatabase(_Database):
    def command(self, cmd: Mapping[str, Any]) -> Mapping[str, Any]:
        doc = dict(super().command(copy.deepcopy(dict(cmd))))
        _check_command_response(doc, max_wire_version=21)  # raises as pymongo does for a real reply
        return doc
