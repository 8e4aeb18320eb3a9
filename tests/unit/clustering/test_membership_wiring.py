"""The membership loop's production seam: AgentOps -> the real agent app -> the MongoDB driver (recorded
replies), and the daemon/loop selection by HA mode (never by engine name)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from kubetrove.agent.app import make_app
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.mongodb.driver import MongoDBDriver
from kubetrove.agent.protocol import MembershipAction
from kubetrove.api.common import Engine
from kubetrove.clustering.agent_ops import AgentOps, Endpoint, Replication
from kubetrove.clustering.membership_process import MembershipLoop
from kubetrove.clustering.ops import MembershipRefused
from kubetrove.clustering.process import Loop
from kubetrove.clustering.ring_process import RingLoop
from kubetrove.clustering.runner import make_loop
from kubetrove.datastores import registry
from kubetrove.datastores.base import HAMode
from kubetrove.handlers.clustering import has_loop
from tests.unit.agent import recorded_mongodb_replset as rec
from tests.unit.agent.conftest import TOKEN

PODS = ["db-0", "db-1", "db-2", "db-3"]


async def agent_ops(me: int, primary: int) -> AsyncIterator[tuple[AgentOps, rec.ReplayClient]]:
    replies = {"hello": rec.hello(me, primary, [0, 1, 2]), "replSetGetConfig": rec.get_config([0, 1, 2])}
    replay = rec.ReplayClient({**replies, "replSetReconfig": rec.OK})
    server = TestServer(
        make_app(MongoDBDriver(EngineConfig(user="root", password="x"), client=replay), TOKEN)
    )
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    ops = AgentOps(
        lambda pod: Endpoint(url, f"{pod}.db-headless.ns.svc", 27017), TOKEN, Replication("root", "x")
    )
    yield ops, replay
    await ops.close()
    await server.close()


@pytest.fixture
async def on_primary() -> AsyncIterator[tuple[AgentOps, rec.ReplayClient]]:
    async for pair in agent_ops(me=0, primary=0):
        yield pair


@pytest.fixture
async def on_secondary() -> AsyncIterator[tuple[AgentOps, rec.ReplayClient]]:
    async for pair in agent_ops(me=1, primary=0):
        yield pair


async def test_pods_become_members_by_ordinal_and_engine_address(
    on_primary: tuple[AgentOps, rec.ReplayClient],
) -> None:
    ops, replay = on_primary
    reply = await ops.set_members("db-0", PODS)
    assert (reply.action, reply.added) == (MembershipAction.RECONFIGURED, [rec.host(3)])
    members = replay.sent_doc("replSetReconfig")["replSetReconfig"]["members"]
    assert members[-1] == {"_id": 3, "host": "db-3.db-headless.ns.svc:27017"}


async def test_a_secondary_refusal_becomes_membership_refused(
    on_secondary: tuple[AgentOps, rec.ReplayClient],
) -> None:
    ops, replay = on_secondary
    with pytest.raises(MembershipRefused, match="only the primary"):
        await ops.set_members("db-1", PODS)
    assert "replSetReconfig" not in replay.names()


@pytest.mark.parametrize("engine", list(Engine))
def test_daemon_and_loop_follow_the_ha_mode(engine: Engine) -> None:
    store = registry.get(engine)
    body = {"spec": {"datastore": {"type": engine.value}}}
    assert has_loop(body)  # type: ignore[arg-type]
    wiring = type("W", (), {"store": store, "interval": 1.0, "wait_timeout": 30.0})()
    loop = make_loop(wiring, None, None)  # type: ignore[arg-type]
    expected = {HAMode.ENGINE_ELECTED: MembershipLoop, HAMode.NO_PRIMARY: RingLoop}.get(store.ha_mode, Loop)
    assert type(loop) is expected


def test_an_unknown_engine_gets_no_daemon() -> None:
    assert has_loop({"spec": {"datastore": {"type": "db2"}}}) is False  # type: ignore[arg-type]
