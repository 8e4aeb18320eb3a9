"""Replica-set membership (PUT /v1/replication/members) of the MongoDB driver, on recorded replies.

The exact documents the driver sends (replSetInitiate, replSetReconfig) are asserted, and the replies
travel through pymongo's own reply checking (``recorded_mongodb_replset``). Also the route end to end:
AgentClient -> the real agent app -> the driver -> recorded replies, and 501 for other engines.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.engines.base import Conflict, Unsupported
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb.driver import MongoDBDriver
from kubetrove.agent.engines.mongodb.membership import RECONFIG_MAX_TIME_MS
from kubetrove.agent.engines.mongodb.replset import next_step
from kubetrove.agent.protocol import MembershipAction, Paths, SetMember
from tests.unit.agent import recorded_mongodb_replset as rec
from tests.unit.agent.conftest import TOKEN
from tests.unit.agent.fake_driver import FakeDriver
from tests.unit.agent.recorded_mongodb import Reply


def wanted(*ids: int) -> list[SetMember]:
    return [SetMember(id=i, host=rec.host(i)) for i in ids]


def driver(replies: Mapping[str, Reply]) -> tuple[MongoDBDriver, rec.ReplayClient]:
    client = rec.ReplayClient(replies)
    return MongoDBDriver(EngineConfig(user="root", password="x"), client=client), client


def primary_of(ids: list[int], primary: int = 0, **more: Reply) -> tuple[MongoDBDriver, rec.ReplayClient]:
    return driver(
        {
            "hello": rec.hello(primary, primary, ids),
            "replSetGetConfig": rec.get_config(ids),
            "replSetGetStatus": rec.repl_status(ids, primary),
            **more,
        }
    )


# -- the pure step ---------------------------------------------------------------------------------


def test_next_step_adds_one_member_with_its_ordinal_and_keeps_everything_else() -> None:
    config = rec.get_config([0, 1, 2])["config"]
    step = next_step(config, wanted(0, 1, 2, 3, 4))
    assert step is not None and (step.added, step.removed) == (rec.host(3), None)
    assert step.config["version"] == 180295 and config["version"] == 180294  # input untouched
    assert step.config["members"][:3] == config["members"]
    assert step.config["members"][3] == {"_id": 3, "host": rec.host(3)}
    assert {k: v for k, v in step.config.items() if k not in ("version", "members")} == {
        k: v for k, v in config.items() if k not in ("version", "members")
    }


def test_next_step_removes_before_it_adds_highest_id_first() -> None:
    config = rec.get_config([0, 1, 2, 3, 4])["config"]
    step = next_step(config, wanted(0, 1, 2))
    assert step is not None and (step.added, step.removed) == (None, rec.host(4))
    assert [m["_id"] for m in step.config["members"]] == [0, 1, 2, 3]


def test_next_step_replaces_a_moved_host_in_two_steps_reusing_the_freed_id() -> None:
    config = rec.get_config([0, 1, 2])["config"]
    moved = [*wanted(0, 1), SetMember(id=2, host="db-2.other.ns.svc:27017")]
    first = next_step(config, moved)
    assert first is not None and first.removed == rec.host(2)
    second = next_step(first.config, moved)
    assert second is not None and second.added == "db-2.other.ns.svc:27017"
    assert second.config["members"][-1] == {"_id": 2, "host": "db-2.other.ns.svc:27017"}
    assert second.config["version"] == config["version"] + 2
    assert next_step(second.config, moved) is None


def test_next_step_picks_a_free_id_when_the_ordinal_is_taken() -> None:
    config = rec.get_config([0, 1])["config"]
    config["members"][1]["host"] = "legacy:27017"  # id 1 held by a member kubetrove did not add
    step = next_step(config, [*wanted(0, 1), SetMember(id=9, host="legacy:27017")])
    assert step is not None and step.config["members"][-1] == {"_id": 2, "host": rec.host(1)}


def test_next_step_is_none_when_the_hosts_match() -> None:
    assert next_step(rec.get_config([0, 1, 2])["config"], wanted(2, 1, 0)) is None


# -- the driver on recorded replies ----------------------------------------------------------------


@pytest.mark.parametrize("cmd_line", [rec.CMD_LINE_FROM_CONFIG, rec.CMD_LINE_FROM_FLAG])
def test_an_uninitiated_member_initiates_the_set_with_every_member(cmd_line: dict[str, Any]) -> None:
    drv, client = driver(
        {
            "hello": rec.UNINITIATED_HELLO,
            "replSetGetConfig": rec.NOT_YET_INITIALIZED,
            "getCmdLineOpts": cmd_line,
            "replSetInitiate": rec.OK,
        }
    )
    reply = drv.set_members(wanted(2, 0, 1))
    assert client.names() == ["hello", "replSetGetConfig", "getCmdLineOpts", "replSetInitiate"]
    assert client.sent_doc("replSetInitiate") == {
        "replSetInitiate": {
            "_id": "rs0",
            "members": [
                {"_id": 0, "host": rec.host(0)},
                {"_id": 1, "host": rec.host(1)},
                {"_id": 2, "host": rec.host(2)},
            ],
            "settings": {"electionTimeoutMillis": 3000},
        }
    }
    assert all(db == "admin" for db, _ in client.sent)
    assert (reply.action, reply.complete, reply.version) == (MembershipAction.INITIATED, True, 1)
    assert reply.added == [rec.host(0), rec.host(1), rec.host(2)]


def test_a_set_created_meanwhile_is_a_conflict_not_a_second_set() -> None:
    drv, _ = driver(
        {
            "hello": rec.UNINITIATED_HELLO,
            "replSetGetConfig": rec.NOT_YET_INITIALIZED,
            "getCmdLineOpts": rec.CMD_LINE_FROM_CONFIG,
            "replSetInitiate": rec.ALREADY_INITIALIZED,
        }
    )
    with pytest.raises(Conflict, match="already initialized"):
        drv.set_members(wanted(0, 1, 2))


def test_the_primary_with_the_wanted_members_changes_nothing() -> None:
    drv, client = primary_of([0, 1, 2])
    reply = drv.set_members(wanted(0, 1, 2))
    assert (reply.action, reply.complete, reply.version) == (MembershipAction.UNCHANGED, True, 180294)
    assert client.names() == ["hello", "replSetGetConfig"]


def test_growing_by_two_adds_one_member_per_call() -> None:
    drv, client = primary_of([0, 1, 2], replSetReconfig=rec.OK)
    reply = drv.set_members(wanted(0, 1, 2, 3, 4))
    assert (reply.action, reply.added, reply.removed) == (MembershipAction.RECONFIGURED, [rec.host(3)], [])
    assert (reply.complete, reply.version) == (False, 180295)
    sent = client.sent_doc("replSetReconfig")
    assert sent["maxTimeMS"] == RECONFIG_MAX_TIME_MS
    assert sent["replSetReconfig"]["version"] == 180295
    assert [m["host"] for m in sent["replSetReconfig"]["members"]] == [rec.host(i) for i in range(4)]
    # The caller calls again; the set now has four members.
    drv, client = primary_of([0, 1, 2, 3], replSetReconfig=rec.OK)
    reply = drv.set_members(wanted(0, 1, 2, 3, 4))
    assert (reply.added, reply.complete) == ([rec.host(4)], True)


def test_shrinking_removes_the_highest_member_first() -> None:
    drv, client = primary_of([0, 1, 2, 3, 4], replSetReconfig=rec.OK)
    reply = drv.set_members(wanted(0, 1, 2))
    assert (reply.removed, reply.complete) == ([rec.host(4)], False)
    assert [m["_id"] for m in client.sent_doc("replSetReconfig")["replSetReconfig"]["members"]] == [
        0,
        1,
        2,
        3,
    ]


def test_a_removal_that_would_leave_no_healthy_majority_is_refused_and_nothing_is_sent() -> None:
    # 5 members, 1 and 2 down: without 4 the config has 4 voters, 2 of them healthy (a majority is 3).
    status = rec.repl_status([0, 1, 2, 3, 4], down=(1, 2))
    drv, client = primary_of([0, 1, 2, 3, 4], replSetGetStatus=status)
    with pytest.raises(Conflict) as refused:
        drv.set_members(wanted(0, 1, 2))
    assert str(refused.value) == (
        f"removing {rec.host(4)} would leave 2 healthy voting members of 4 (a majority is 3; not healthy: "
        f"{rec.host(1)}, {rec.host(2)}): the set could not elect a primary or commit majority writes; "
        "it changes once those members are back"
    )
    assert "replSetReconfig" not in client.names()


def test_removing_a_member_that_is_down_keeps_the_majority_and_goes_ahead() -> None:
    status = rec.repl_status([0, 1, 2, 3, 4], down=(3, 4))
    drv, client = primary_of([0, 1, 2, 3, 4], replSetGetStatus=status, replSetReconfig=rec.OK)
    assert drv.set_members(wanted(0, 1, 2)).removed == [rec.host(4)]  # 3 of the 4 left are healthy
    assert "replSetReconfig" in client.names()


def test_a_secondary_refuses_with_409_naming_the_primary() -> None:
    drv, client = driver({"hello": rec.hello(1, 0, [0, 1, 2]), "replSetGetConfig": rec.get_config([0, 1, 2])})
    with pytest.raises(Conflict, match=r"only the primary.*db-0\.db-headless"):
        drv.set_members(wanted(0, 1, 2, 3))
    assert "replSetReconfig" not in client.names()


def test_during_an_election_a_member_says_none_is_elected() -> None:
    drv, _ = driver({"hello": rec.hello(1, None, [0, 1, 2]), "replSetGetConfig": rec.get_config([0, 1, 2])})
    with pytest.raises(Conflict, match="none elected yet"):
        drv.set_members(wanted(0, 1, 2))


def test_a_primary_that_stepped_down_meanwhile_is_a_409_not_engine_down() -> None:
    # pymongo raises NotWritablePrimary as NotPrimaryError (an AutoReconnect): still the server's answer.
    drv, _ = primary_of([0, 1, 2], replSetReconfig=rec.NOT_WRITABLE_PRIMARY)
    with pytest.raises(Conflict, match="writable PRIMARY"):
        drv.set_members(wanted(0, 1, 2, 3))


def test_the_server_refusing_two_voters_at_once_is_a_409_with_its_message() -> None:
    drv, _ = primary_of([0, 1, 2], replSetReconfig=rec.TWO_VOTERS)
    with pytest.raises(Conflict, match="at most 1 voting member"):
        drv.set_members(wanted(0, 1, 2, 3))


def test_the_primary_is_never_removed_from_under_itself() -> None:
    drv, client = primary_of([0, 1, 2], primary=2)
    with pytest.raises(Conflict, match="step it down first"):
        drv.set_members(wanted(0, 1))
    assert "replSetReconfig" not in client.names()


def test_a_standalone_mongod_is_501() -> None:
    drv, client = driver({"hello": rec.STANDALONE_HELLO})
    with pytest.raises(Unsupported, match="--replSet"):
        drv.set_members(wanted(0))
    assert client.names() == ["hello"]


# -- the route, through the real agent app and AgentClient --------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestServer, rec.ReplayClient]]:
    drv, replay = primary_of([0, 1, 2], replSetReconfig=rec.OK)
    server = TestServer(make_app(drv, TOKEN))
    await server.start_server()
    yield server, replay
    await server.close()


async def test_the_route_carries_the_request_and_the_reply(
    served: tuple[TestServer, rec.ReplayClient],
) -> None:
    server, replay = served
    async with AgentClient(str(server.make_url("")), TOKEN, retries=0) as client:
        reply = await client.set_members(wanted(0, 1, 2, 3))
    assert (reply.action, reply.added, reply.complete) == (MembershipAction.RECONFIGURED, [rec.host(3)], True)
    assert replay.names() == ["hello", "replSetGetConfig", "replSetReconfig"]


@pytest.mark.parametrize(
    "members",
    [
        [{"id": 0, "host": "db-0:27017"}, {"id": 0, "host": "db-1:27017"}],  # duplicate id
        [{"id": 0, "host": "db-0:27017"}, {"id": 1, "host": "db-0:27017"}],  # duplicate host
        [{"id": 256, "host": "db-0:27017"}],  # beyond MongoDB's 0-255
        [{"id": 0, "host": "db-0"}],  # no port
        [{"id": 0, "host": "x'; drop:27017"}],
        [],
    ],
)
async def test_bad_member_lists_are_400_before_the_driver(
    served: tuple[TestServer, rec.ReplayClient], members: list[dict[str, Any]]
) -> None:
    server, replay = served
    async with aiohttp.ClientSession() as session:
        url = str(server.make_url(Paths.REPLICATION_MEMBERS))
        response = await session.put(
            url, json={"members": members}, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status == 400, await response.text()
    assert replay.sent == []


async def test_engines_without_an_elected_set_answer_501() -> None:
    server = TestServer(make_app(FakeDriver(engine="mariadb"), TOKEN))
    await server.start_server()
    async with AgentClient(str(server.make_url("")), TOKEN, retries=0) as client:
        with pytest.raises(AgentError) as err:
            await client.set_members(wanted(0))
    await server.close()
    assert (err.value.status, err.value.reply.error) == (501, "unsupported")


RESTORED_HELLO = {**rec.UNINITIATED_HELLO}  # mongod 6.0.5 on files holding another set's config


def test_a_member_restored_with_another_sets_config_creates_the_set_by_a_forced_reconfig() -> None:
    source = rec.get_config([0, 1, 2])
    for m in source["config"]["members"]:
        m["host"] = m["host"].replace("db-", "old-")  # the source cluster's pods
    drv, client = driver({"hello": RESTORED_HELLO, "replSetGetConfig": source, "replSetReconfig": rec.OK})
    reply = drv.set_members(wanted(0, 1, 2))
    sent = client.sent_doc("replSetReconfig")
    assert sent["force"] is True
    assert sent["replSetReconfig"]["members"] == [{"_id": i, "host": rec.host(i)} for i in (0, 1, 2)]
    assert sent["replSetReconfig"]["version"] == source["config"]["version"] + 1
    assert sent["replSetReconfig"]["settings"] == {"electionTimeoutMillis": 3000}
    assert (reply.action, reply.added, reply.complete) == (
        MembershipAction.INITIATED,
        [rec.host(0), rec.host(1), rec.host(2)],
        True,
    )


def test_a_member_our_own_config_leaves_out_is_never_forced_in() -> None:
    ours = rec.get_config([0, 1, 2])  # e.g. removed by a scale-down, or not added yet
    drv, client = driver({"hello": RESTORED_HELLO, "replSetGetConfig": ours})
    with pytest.raises(Conflict, match="the primary adds it"):
        drv.set_members(wanted(0, 1, 2, 3))
    assert "replSetReconfig" not in client.names()
