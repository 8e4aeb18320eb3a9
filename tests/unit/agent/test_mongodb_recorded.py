"""The MongoDB driver on recorded replies: replica-set status, fencing, waits, and the exact user commands."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from bson import Timestamp

from kubetrove.agent.engines.base import BadRequest, Conflict, NotFound, Unsupported
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb.driver import MongoDBDriver
from kubetrove.agent.engines.mongodb.parameters import live_command
from kubetrove.agent.engines.mongodb.switchover import parse_position
from kubetrove.agent.protocol import Grant, Privilege, Role
from tests.unit.agent import recorded_mongodb as rec

AGENT_LOGIN = "kubetrove-agent"


def driver(replies: Mapping[str, rec.Reply]) -> tuple[MongoDBDriver, rec.RecordedClient]:
    client = rec.RecordedClient({"buildInfo": rec.BUILD_INFO, **replies})
    return MongoDBDriver(EngineConfig(user=AGENT_LOGIN, password="x"), client=client), client


def member_of_set(me: int, lagging_seconds: int = 0) -> tuple[MongoDBDriver, rec.RecordedClient]:
    return driver({"hello": rec.hello(me), "replSetGetStatus": rec.repl_status(me, lagging_seconds)})


def test_primary_status() -> None:
    status = member_of_set(0)[0].status()
    assert (status.role, status.read_only, status.healthy) == (Role.PRIMARY, False, True)
    assert status.position == f"{rec.TS}:1" and status.lag_seconds == 0.0
    assert status.source_host is None and status.replication_running is False
    assert status.version == "7.0.14"


def test_secondary_in_sync() -> None:
    status = member_of_set(1)[0].status()
    assert (status.role, status.read_only, status.healthy) == (Role.REPLICA, True, True)
    assert status.position == f"{rec.TS}:1" and status.lag_seconds == 0.0
    assert status.source_host == "m1.example.net:27017" and status.replication_running is True


def test_lagging_secondary_reports_its_own_optime_and_the_lag() -> None:
    status = member_of_set(2, lagging_seconds=7)[0].status()
    assert status.role is Role.REPLICA
    assert status.position == f"{rec.TS}:1"  # m3's optime, not the primary's
    assert status.lag_seconds == 7.0
    assert status.source_host == "m2.example.net:27017"


def test_standalone_sends_no_replica_set_command() -> None:
    drv, client = driver({"hello": rec.STANDALONE_HELLO})
    status = drv.status()
    assert (status.role, status.read_only, status.position) == (Role.STANDALONE, False, None)
    assert "replSetGetStatus" not in client.names()


def test_uninitiated_replica_set_member_is_unknown_not_standalone() -> None:
    # hello of a mongod started with --replSet before replSetInitiate (code 94: NotYetInitialized).
    uninitiated_hello = {"isWritablePrimary": False, "secondary": False, "isreplicaset": True, "ok": 1.0}
    no_config = rec.failure(94, "no replset config has been received")
    drv, _ = driver({"hello": uninitiated_hello, "replSetGetStatus": no_config})
    status = drv.status()
    assert (status.role, status.read_only, status.healthy) == (Role.UNKNOWN, True, False)


def test_positions_order_like_the_oplog_not_like_strings() -> None:
    assert parse_position("100:10") > parse_position("100:9") > parse_position("99:999")
    for bad in ["", "100", "a:1", "1:-1", "1:2:3"]:
        with pytest.raises(BadRequest):
            parse_position(bad)


def test_new_user_gets_exactly_the_mapped_roles() -> None:
    drv, client = driver({"usersInfo": {"users": [], "ok": 1.0}})
    grants = [
        Grant(database="shop", privileges=[Privilege.READ]),
        Grant(database="orders", privileges=[Privilege.READ_WRITE, Privilege.READ_WRITE]),
        Grant(database="ops", privileges=[Privilege.ADMIN]),
    ]
    assert drv.ensure_user("app", "s3cret", grants) is True
    assert client.sent == [
        ("admin", {"usersInfo": {"user": "app", "db": "admin"}}),
        (
            "admin",
            {
                "createUser": "app",
                "pwd": "s3cret",
                "roles": [
                    {"role": "read", "db": "shop"},
                    {"role": "readWrite", "db": "orders"},
                    {"role": "dbOwner", "db": "ops"},
                ],
            },
        ),
    ]


def test_existing_user_has_its_roles_replaced() -> None:
    existing = {"user": "app", "db": "admin", "roles": [{"role": "readWrite", "db": "old"}]}
    drv, client = driver({"usersInfo": {"users": [existing], "ok": 1.0}})
    assert drv.ensure_user("app", "s3cret", [Grant(database="new", privileges=[Privilege.READ])]) is False
    assert client.sent[-1] == (
        "admin",
        {"updateUser": "app", "pwd": "s3cret", "roles": [{"role": "read", "db": "new"}]},
    )


@pytest.mark.parametrize(
    ("name", "roles"),
    [(AGENT_LOGIN, []), ("ops-root", [{"role": "root", "db": "admin"}])],
)
def test_privileged_users_are_not_managed(name: str, roles: list[dict[str, str]]) -> None:
    drv, client = driver({"usersInfo": {"users": [{"user": name, "roles": roles}], "ok": 1.0}})
    with pytest.raises(Conflict):
        drv.ensure_user(name, "pw", [])
    with pytest.raises(Conflict):
        drv.drop_user(name)
    assert not {"createUser", "updateUser", "dropUser"} & set(client.names())


def test_drop_user_and_missing_user() -> None:
    drv, client = driver({"usersInfo": {"users": [{"user": "app", "roles": []}], "ok": 1.0}})
    drv.drop_user("app")
    assert client.sent[-1] == ("admin", {"dropUser": "app"})
    drv, _ = driver({"usersInfo": {"users": [], "ok": 1.0}})
    with pytest.raises(NotFound):
        drv.drop_user("app")


def test_fence_steps_the_primary_down_and_is_a_no_op_elsewhere() -> None:
    drv, client = member_of_set(0)
    drv.fence()
    assert client.sent[-1] == ("admin", {"replSetStepDown": 60})
    drv, client = member_of_set(1)
    drv.fence()
    assert client.names() == ["hello"]
    drv, _ = driver({"hello": rec.STANDALONE_HELLO})
    with pytest.raises(Unsupported):
        drv.fence()


def test_promote_asks_a_secondary_to_stand_for_election() -> None:
    drv, client = member_of_set(1)
    drv.promote()
    assert client.sent[-1] == ("admin", {"replSetStepUp": 1})
    drv, client = member_of_set(0)
    drv.promote()
    assert "replSetStepUp" not in client.names()


def test_set_source_is_unsupported() -> None:
    drv, client = member_of_set(1)
    with pytest.raises(Unsupported, match="elects"):
        drv.set_source("m1.example.net", 27017, "u", "p")
    assert client.sent == []


def _advancing(increments: Iterator[int]) -> rec.Reply:
    def reply(_: Mapping[str, Any]) -> Mapping[str, Any]:
        status = rec.repl_status(2)
        status["members"][2]["optime"]["ts"] = Timestamp(rec.TS, next(increments))
        return status

    return reply


def test_wait_for_position_polls_the_applied_optime() -> None:
    drv, client = driver({"hello": rec.hello(2), "replSetGetStatus": _advancing(iter([1, 2, 3, 4]))})
    assert drv.wait_for_position(f"{rec.TS}:3", timeout_seconds=10) is True
    assert client.names().count("replSetGetStatus") == 3


def test_wait_for_position_times_out() -> None:
    drv, _ = member_of_set(2)
    assert drv.wait_for_position(f"{rec.TS + 1}:1", timeout_seconds=0.3) is False


def test_parameters_settable_at_runtime_or_not() -> None:
    def set_parameter(cmd: Mapping[str, Any]) -> Mapping[str, Any]:
        if "storageEngine" in cmd:
            raise rec.failure(20, "not allowed to change [storageEngine] at runtime")
        return {"was": 0, "ok": 1.0}

    drv, client = driver({"hello": rec.hello(0), "setParameter": set_parameter, "profile": {"ok": 1.0}})
    reply = drv.apply_parameters(
        {
            "setParameter.notablescan": "true",
            "storageEngine": "inMemory",
            "setParameter.ttlMonitorSleepSecs": "30",
            "operationProfiling.slowOpThresholdMs": "50",
            "net.maxIncomingConnections": "100",
        }
    )
    assert reply.applied == [
        "operationProfiling.slowOpThresholdMs",
        "setParameter.notablescan",
        "setParameter.ttlMonitorSleepSecs",
    ]
    assert reply.needs_restart == ["net.maxIncomingConnections", "storageEngine"]
    assert ("admin", {"setParameter": 1, "notablescan": True}) in client.sent  # typed, not the string
    assert ("admin", {"setParameter": 1, "ttlMonitorSleepSecs": 30}) in client.sent
    assert ("admin", {"profile": -1, "slowms": 50}) in client.sent


@pytest.mark.parametrize(
    ("name", "value", "replica_set", "command"),
    [
        (
            "setParameter.cursorTimeoutMillis",
            "600000",
            False,
            {"setParameter": 1, "cursorTimeoutMillis": 600000},
        ),
        ("setParameter.notablescan", "true", True, {"setParameter": 1, "notablescan": True}),
        ("logLevel", "2", False, {"setParameter": 1, "logLevel": 2}),
        ("operationProfiling.slowOpThresholdMs", "50", False, {"profile": -1, "slowms": 50}),
        ("operationProfiling.slowOpSampleRate", "0.5", True, {"profile": -1, "sampleRate": 0.5}),
        ("replication.oplogSizeMB", "2048", True, {"replSetResizeOplog": 1, "size": 2048.0}),
        ("replication.oplogSizeMB", "2048", False, None),  # a standalone has no oplog
        ("net.maxIncomingConnections", "100", True, None),  # read at start-up only
    ],
)
def test_each_catalog_parameter_maps_to_its_runtime_command(
    name: str, value: str, replica_set: bool, command: dict[str, Any] | None
) -> None:
    assert live_command(name, value, replica_set) == command


def test_a_step_up_the_voters_refuse_is_a_conflict_to_ask_again() -> None:
    refused = rec.failure(125, "Election failed.")
    drv, client = driver({"hello": rec.hello(1), "replSetStepUp": refused})
    with pytest.raises(Conflict, match="Election failed"):
        drv.promote()
    assert "replSetStepUp" in client.names()
