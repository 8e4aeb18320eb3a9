"""The agent's replica-set routes against real mongod 6.0.5 replica sets (loopback ports, a key file).

Membership (PUT /v1/replication/members): the set is created by the first member's agent
(``replSetInitiate``), then changed one member per ``replSetReconfig`` on the primary, as the operator's
membership loop calls it; a removal that would leave the new config without a healthy majority is
refused (409) and changes nothing. Status reports what ``hello`` and ``replSetGetStatus`` say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest
from pymongo import WriteConcern

from kubetrove.agent.client import AgentClient, AgentError
from kubetrove.agent.protocol import MembershipAction, MembersReply, Role, SetMember
from tests.integration.cluster_harness import until
from tests.integration.conftest import RunningAgent
from tests.integration.servers.mongod import Mongod, ReplicaSet, new_member, wait_until

StartAgent = Callable[..., Awaitable[RunningAgent]]


def wanted(members: Sequence[Mongod], ids: Sequence[int] | None = None) -> list[SetMember]:
    """The members as the operator names them: id = position (the StatefulSet ordinal), host:port."""
    ids = range(len(members)) if ids is None else ids
    return [SetMember(id=i, host=m.address) for i, m in zip(ids, members, strict=True)]


async def agents_for(start_agent: StartAgent, members: Sequence[Mongod]) -> list[AgentClient]:
    return [(await start_agent("mongodb", m.engine_config())).client for m in members]


async def converge(agent: AgentClient, members: list[SetMember], within: float = 90) -> list[MembersReply]:
    """Call set_members until the reply says complete, as the operator's membership loop does: a 409
    for "a reconfiguration is still committing" (ConfigurationInProgress) or "the config moved on since it
    was read" (NewReplicaSetConfigurationIncompatible: mongod's own reconfig clearing a new member's
    newlyAdded flag raced ours, see replset.py) is asked again a moment later.
    The replies of the calls that changed something, in order."""
    replies: list[MembersReply] = []
    deadline = time.monotonic() + within
    while True:
        try:
            reply = await agent.set_members(members)
        except AgentError as exc:
            retryable = (
                "ConfigurationInProgress",
                "NewReplicaSetConfigurationIncompatible",
                "CurrentConfigNotCommittedYet",
                "MaxTimeMSExpired",
            )
            if exc.status != 409 or not any(code in exc.reply.detail for code in retryable):
                raise
            if time.monotonic() > deadline:
                raise AssertionError(f"still refused after {within} s: {exc}") from exc
            await asyncio.sleep(0.5)
            continue
        if reply.action is not MembershipAction.UNCHANGED:
            replies.append(reply)
        if reply.complete:
            return replies


def config_hosts(member: Mongod) -> list[str]:
    with member.client() as c:
        return [m["host"] for m in c.admin.command("replSetGetConfig")["config"]["members"]]


async def test_the_first_member_initiates_the_set_and_status_follows_it(
    mongod_replica_set_factory: Callable[..., ReplicaSet], start_agent: StartAgent
) -> None:
    rs = mongod_replica_set_factory(initiate=False)
    agents = await agents_for(start_agent, rs.members)
    before = await agents[0].status()
    assert before.role is Role.UNKNOWN and before.read_only and not before.healthy  # not in a set yet

    # A member that is not the primary of an existing set refuses; an uninitiated one creates the set.
    reply = await agents[0].set_members(wanted(rs.members))
    assert reply.action is MembershipAction.INITIATED and reply.complete
    assert reply.added == [m.address for m in rs.members]
    rs.wait_healthy()

    primary = rs.primary()

    # A member that just became a secondary picks its sync source a moment later (heartbeats): until
    # then it honestly reports replication not running.
    async def replicating() -> bool:
        seen = [await a.status() for a in agents]
        return all(s.role is Role.PRIMARY or s.replication_running for s in seen)

    await until(replicating, "every secondary has a sync source", 60)
    statuses = {m.address: await a.status() for m, a in zip(rs.members, agents, strict=True)}
    assert statuses[primary.address].role is Role.PRIMARY
    assert statuses[primary.address].lag_seconds == 0.0 and not statuses[primary.address].read_only
    for address, status in statuses.items():
        assert status.healthy and status.version == "6.0.5" and status.position is not None
        if address != primary.address:
            assert status.role is Role.REPLICA and status.read_only
            assert status.lag_seconds is not None and status.lag_seconds >= 0
            assert status.replication_running and status.source_host in {m.address for m in rs.members}

    # The same membership again: the primary says nothing changed; a secondary refuses (only the
    # primary reconfigures); the first member, now in a set, never initiates a second one.
    primary_agent = agents[rs.members.index(primary)]
    again = await primary_agent.set_members(wanted(rs.members))
    assert again.action is MembershipAction.UNCHANGED and again.complete
    secondary_agent = agents[(rs.members.index(primary) + 1) % 3]
    with pytest.raises(AgentError) as refused:
        await secondary_agent.set_members(wanted(rs.members))
    assert refused.value.status == 409 and "only the primary" in refused.value.reply.detail

    # Positions order like the oplog: a majority write moves the primary's position forward and
    # every secondary reaches it (wait_for_position).
    with rs.client() as c:
        c.app.w.with_options(write_concern=WriteConcern(w="majority")).insert_one({"n": 1})
    position = (await primary_agent.status()).position
    assert position is not None and position != statuses[primary.address].position
    assert (await secondary_agent.wait_for_position(position, 30)).reached


async def test_scale_up_and_down_one_member_per_reconfig_never_losing_the_majority(
    mongod_replica_set_factory: Callable[..., ReplicaSet], start_agent: StartAgent
) -> None:
    rs = mongod_replica_set_factory()
    base, keyfile = rs.members[0].base.parent, rs.keyfile
    with rs.client() as c:
        c.app.w.with_options(write_concern=WriteConcern(w="majority")).insert_many(
            [{"n": i} for i in range(100)]
        )
    extra = [new_member(base, i, keyfile) for i in (3, 4)]
    rs.members += extra
    agents = await agents_for(start_agent, rs.members)
    primary = rs.primary()
    on_primary = agents[rs.members.index(primary)]

    # 3 -> 5: one member per call; the reply says whether the set is complete.
    grown = await converge(on_primary, wanted(rs.members))
    assert [(r.action, r.added, r.removed, r.complete) for r in grown] == [
        (MembershipAction.RECONFIGURED, [extra[0].address], [], False),
        (MembershipAction.RECONFIGURED, [extra[1].address], [], True),
    ]
    # Versions only grow; not by exactly one: mongod (4.4+) reconfigures by itself once a newly added
    # member has caught up (it clears the member's internal ``newlyAdded`` flag), a version of its own.
    assert grown[0].version is not None and grown[1].version is not None
    assert grown[1].version > grown[0].version
    rs.wait_healthy()
    with extra[1].client() as c:  # initial sync copied the data
        assert c.app.w.count_documents({}) == 100

    # 5 -> 3 while two of the three members that stay are down: removing either extra member would
    # leave a 4-member config with 2 healthy voters (a majority is 3). Refused, nothing changed, the
    # primary still primary.
    keep = [primary, *[m for m in rs.members[:3] if m is not primary][:2]]
    down = keep[1:]
    for m in down:
        m.kill()
    # The primary learns of it from missed heartbeats (every 2 s); until then its status says healthy
    # and mongod's own quorum check is what refuses the reconfig.
    wait_until(lambda: sorted(rs.states().values()).count("(not reachable/healthy)") == 2, 60, primary.log)
    ids = [rs.members.index(m) for m in keep]
    with pytest.raises(AgentError) as refused:
        await converge(on_primary, wanted(keep, ids))  # ConfigurationInProgress is asked again
    assert refused.value.status == 409
    detail = refused.value.reply.detail
    assert detail.startswith(f"removing {extra[1].address} would leave 2 healthy voting members of 4 ")
    assert "a majority is 3" in detail
    assert len(config_hosts(primary)) == 5 and primary.hello()["isWritablePrimary"]

    # With them back, the same request removes one member per call, highest id first.
    for m in down:
        m.start()
    wait_until(lambda: sorted(rs.states().values()).count("SECONDARY") == 4, 90, primary.log)
    shrunk = await converge(on_primary, wanted(keep, ids))
    assert [(r.added, r.removed) for r in shrunk] == [([], [extra[1].address]), ([], [extra[0].address])]
    assert sorted(config_hosts(primary)) == sorted(m.address for m in keep)
    rs.members = list(keep)
    for m in extra:
        m.remove()
    rs.wait_healthy()


@pytest.fixture(scope="module")
def healthy_set(mongod_replica_set_factory: Callable[..., ReplicaSet]) -> ReplicaSet:
    """One initiated set for the tests that leave it as they found it."""
    return mongod_replica_set_factory()


async def test_the_primary_is_never_removed_by_a_reconfig(
    healthy_set: ReplicaSet, start_agent: StartAgent
) -> None:
    rs = healthy_set
    primary = rs.primary()
    others = [m for m in rs.members if m is not primary]
    agent = (await start_agent("mongodb", primary.engine_config())).client
    with pytest.raises(AgentError) as refused:
        await agent.set_members([SetMember(id=rs.members.index(m), host=m.address) for m in others])
    assert refused.value.status == 409 and "step it down first" in refused.value.reply.detail
    assert len(config_hosts(primary)) == 3


async def test_the_oplog_is_resized_live_on_a_member(
    healthy_set: ReplicaSet, start_agent: StartAgent
) -> None:
    rs = healthy_set
    member = rs.members[1]
    agent = (await start_agent("mongodb", member.engine_config())).client
    reply = await agent.apply_parameters({"replication.oplogSizeMB": "1234"})
    assert reply.applied == ["replication.oplogSizeMB"] and reply.needs_restart == []
    with member.client() as c:
        stats = c.local.command("collStats", "oplog.rs")
    assert stats["maxSize"] == 1234 * 1024 * 1024
