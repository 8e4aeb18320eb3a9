"""The ring loop on a real Cassandra ring: a real agent per node, the real ``RingLoop`` through ``AgentOps``.

The ring is the session's (conftest_ring.py); pods ``ring-0..2`` are its nodes in address order. The
unit tests' in-memory ``FakeRecord`` stands in for the DatabaseCluster resource (what the loop would write
to ``status.members`` is in ``record.members`` and ``record.ring``).

``QuorumWriter`` plays the application: INSERTs at QUORUM through the whole ring (any node coordinates),
each with a fresh id, never retried, remembering which ones were acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver
from kubetrove.clustering.agent_ops import AgentOps, Endpoint, Replication
from kubetrove.clustering.ring_process import RingLoop
from kubetrove.clustering.snapshot import ClusterView
from tests.integration.cluster_harness import until
from tests.integration.servers import cassandra
from tests.integration.servers._proc import free_port
from tests.integration.servers.cassandra_ring import Ring
from tests.unit.clustering.fake import FakeRecord

INTERVAL_SECONDS = 0.5


def agent_config(ring: Ring, index: int) -> EngineConfig:
    """How node ``index``'s agent reaches it: CQL on its address, JMX (nodetool) on 127.0.0.1."""
    node = ring.nodes[index]
    user, password = cassandra.SUPERUSER
    return EngineConfig(
        host=node.address,
        port=ring.native_port,
        user=user,
        password=password,
        options={
            "jmx_port": str(node.jmx_port),
            "jolokia_port": str(node.jolokia_port),
            "data_dir": str(node.workdir),
        },
    )


@dataclass
class RingRig:
    """Agents, the loop and its record, over the ring."""

    ring: Ring
    pods: list[str]
    agents: dict[str, AgentClient]
    record: FakeRecord
    ops: AgentOps
    loop: RingLoop
    runners: list[web.AppRunner]
    urls: dict[str, str] = field(default_factory=dict)  # pod -> its agent's base URL
    token: str = ""
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def pod(self, index: int) -> str:
        return self.pods[index]

    async def states(self, wanted: dict[str, str], within: float = 120.0) -> None:
        """Wait until the record's ring view shows ``wanted`` (pod -> "UN"/"DN"...)."""

        def seen() -> dict[str, str]:
            return {p: n.state for p, n in self.record.ring.items()}

        try:
            await until(lambda: all(seen().get(p) == s for p, s in wanted.items()), f"ring {wanted}", within)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the loop saw {seen()}, reasons {self.record.reasons}") from None

    async def close(self) -> None:
        self.stopped.set()
        if self.task is not None:
            await self.task
        await self.ops.close()
        for client in self.agents.values():
            await client.close()
        for runner in self.runners:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def ring_rig(ring: Ring) -> AsyncIterator[RingRig]:
    """One agent per node and the loop running; everything but the ring stopped on exit."""
    pods = [f"ring-{i}" for i in range(len(ring.nodes))]
    token = secrets.token_urlsafe(24)
    runners, endpoints, agents = [], {}, {}
    try:
        for i, pod in enumerate(pods):
            runner = web.AppRunner(make_app(make_driver("cassandra", agent_config(ring, i)), token))
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            url = f"http://127.0.0.1:{port}"
            endpoints[pod] = Endpoint(url, ring.nodes[i].address, ring.native_port)
            agents[pod] = AgentClient(url, token, timeout=300)
        ops = AgentOps(endpoints.__getitem__, token, Replication("", ""), pods=pods)
        record = FakeRecord(pods, ClusterView((), None))
        loop = RingLoop(ops, record, INTERVAL_SECONDS)
        urls = {pod: e.agent_url for pod, e in endpoints.items()}
        rig = RingRig(ring, pods, agents, record, ops, loop, runners, urls, token)
    except BaseException:
        for runner in runners:
            await runner.cleanup()
        raise
    rig.task = asyncio.create_task(loop.run(rig.stopped))
    try:
        yield rig
    finally:
        await rig.close()


class SessionSource(Protocol):
    """Where a writer's sessions come from: a host ring (``Ring.session``), or pods' addresses (e2e)."""

    def session(self) -> contextlib.AbstractContextManager[Any]: ...


@dataclass
class QuorumWriter:
    """INSERTs at QUORUM through the whole ring until stopped; ``acked`` holds the acknowledged ids."""

    ring: SessionSource
    table: str
    acked: list[int] = field(default_factory=list)
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> QuorumWriter:
        self._thread = threading.Thread(target=self._run, name="quorum-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)

    def since(self, count: int) -> int:
        """Acknowledged writes after the first ``count``."""
        return len(self.acked) - count

    def _run(self) -> None:
        from cassandra import ConsistencyLevel

        with self.ring.session() as s:
            insert: Any = s.prepare(f"INSERT INTO {self.table} (id, at) VALUES (?, ?)")
            insert.consistency_level = ConsistencyLevel.QUORUM
            write_id = 0
            while not self._stop.is_set():
                write_id += 1
                try:
                    s.execute(insert, (write_id, time.time()), timeout=10)
                    self.acked.append(write_id)
                except Exception:  # a timeout may or may not have been applied: it is not "acknowledged"
                    self.failed += 1
                    time.sleep(0.05)
