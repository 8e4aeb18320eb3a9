"""A replicated cluster on loopback, driven by the real clustering loop: the integration rig for failover.

N real engine servers, N real agents (the aiohttp app, one per server), the real loop of the engine's
HA mode (``Loop`` for an operator-picked primary, ``MembershipLoop`` for a set that elects its own, as
``clustering.runner.make_loop`` chooses) acting through ``AgentOps``, and the unit tests' in-memory
``FakeRecord`` standing in for the DatabaseCluster resource (status.primary, labels, Events). ``kill``
SIGKILLs a member's engine process; ``restart`` starts it again on the same datadir and port, as the
kubelet restarts a container.

A ``Writer`` thread plays the application: autocommit INSERTs through the recorded primary, each with a
fresh id (never retried, so an id is never written twice), remembering which ones were acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol

from aiohttp import web

from kubetrove.agent.app import make_app
from kubetrove.agent.client import AgentClient
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import make_driver
from kubetrove.agent.protocol import Grant, Privilege
from kubetrove.clustering.agent_ops import AgentOps, Endpoint, Replication
from kubetrove.clustering.membership_process import MembershipLoop
from kubetrove.clustering.observe import gather
from kubetrove.clustering.ops import MemberUnreachable
from kubetrove.clustering.process import Loop
from kubetrove.clustering.snapshot import ClusterView
from kubetrove.datastores import registry
from kubetrove.datastores.base import HAMode
from tests.integration.servers._proc import free_port
from tests.unit.clustering.fake import FakeRecord

APP_USER, APP_DB, REPL_USER = "app", "app", "repl"
# Detection threshold and loop interval used by every failover test and the benchmark.
DETECTION_SECONDS = 2.0
INTERVAL_SECONDS = 0.5


class Server(Protocol):
    port: int
    password: str
    proc: Any

    def engine_config(self) -> EngineConfig: ...


class Engine(Protocol):
    """What differs per engine: servers, the replication account, the application's SQL."""

    name: str

    def start(self, pods: Sequence[str]) -> dict[str, Server]: ...

    def replication(self) -> Replication: ...

    def create_table(self, primary: Server) -> None: ...

    def connect(self, server: Server) -> Any: ...

    def insert(self, conn: Any, write_id: int, pod: str) -> None: ...

    def ids(self, server: Server) -> list[int]: ...

    def restart(self, pod: str, server: Server, primary: Server | None) -> None: ...

    def stop(self) -> None: ...


async def until(
    check: Callable[[], bool | Awaitable[bool]], what: str, within: float = 90.0, every: float = 0.2
) -> None:
    """Poll ``check`` until it holds; AssertionError naming ``what`` after ``within`` s (generous)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if await result if not isinstance(result, bool) else result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for: {what}")
        await asyncio.sleep(every)


@dataclass(frozen=True)
class Ack:
    """One acknowledged write: its id, the member that acknowledged it, and when (monotonic)."""

    write_id: int
    pod: str
    at: float


@dataclass
class Writer:
    """The application: inserts continuously through ``status.primary``; reconnects on any error."""

    cluster: Cluster
    first_id: int = 0  # ids written are first_id + 1, + 2, ...: two writers never collide
    acked: list[Ack] = field(default_factory=list)
    failed: int = 0
    paused: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def on(self, pod: str, since: float = 0.0) -> int:
        """How many writes ``pod`` acknowledged (after ``since``, monotonic)."""
        return sum(1 for a in list(self.acked) if a.pod == pod and a.at > since)

    def _run(self) -> None:
        conn, pod, write_id = None, "", self.first_id
        while not self._stop.is_set():
            if self.paused.is_set():
                time.sleep(0.02)
                continue
            write_id += 1
            try:
                if conn is None:
                    pod = self.cluster.record.primary or ""
                    conn = self.cluster.engine.connect(self.cluster.servers[pod])
                self.cluster.engine.insert(conn, write_id, pod)
                self.acked.append(Ack(write_id, pod, time.monotonic()))
            except Exception:
                self.failed += 1
                with contextlib.suppress(Exception):
                    conn.close()  # type: ignore[union-attr]
                conn = None
                time.sleep(0.02)
        with contextlib.suppress(Exception):
            conn.close()  # type: ignore[union-attr]

    def gap(self, old: str, since: float) -> float:
        """Last ack on ``old`` before ``since`` -> first ack elsewhere after it (the client's write gap)."""
        acks = list(self.acked)
        last = max(a.at for a in acks if a.pod == old and a.at <= since)
        first = min(a.at for a in acks if a.pod != old and a.at > since)
        return first - last


@dataclass
class Cluster:
    """Servers, agents and the loop; built by ``start_cluster``, torn down by ``close``."""

    engine: Engine
    pods: list[str]
    servers: dict[str, Server]
    record: FakeRecord
    ops: AgentOps
    loop: Loop | MembershipLoop
    agents: dict[str, AgentClient]
    runners: dict[str, web.AppRunner]
    token: str
    task: asyncio.Task[None] | None = None
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def primary(self) -> str:
        assert self.record.primary is not None
        return self.record.primary

    def kill(self, pod: str) -> None:
        """SIGKILL the member's engine process (its agent stays up and answers 503)."""
        proc = self.servers[pod].proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)

    async def cut(self, pod: str) -> None:
        """Partition ``pod`` from the operator: its agent stops serving; its engine keeps running, keeps its
        clients and (until failover stops them, I3) its replicas: what the operator sees of a pod whose
        network is gone while a client on the pod's side of the partition still writes."""
        await self.runners[pod].cleanup()

    async def heal(self, pod: str) -> None:
        """End ``cut``: a new agent on the same port, over the same engine."""
        port = int(self.agents[pod].base_url.rsplit(":", 1)[1])
        self.runners[pod] = await _serve_agent(self.engine, self.servers[pod], self.token, port)

    def restart(self, pod: str) -> None:
        """Start the member's engine again (a PostgreSQL ex-primary rejoins via pg_rewind first)."""
        primary = self.servers.get(self.record.primary or "")
        self.engine.restart(pod, self.servers[pod], None if primary is self.servers[pod] else primary)

    def switchover(self, target: str) -> None:
        """Ask for ``target`` as the primary (spec.primary)."""
        self.record.base = replace(self.record.base, wanted_primary=target)

    async def healthy(self, within: float = 90.0) -> None:
        """Wait until the loop reports Healthy; on timeout the message shows what each member reports."""
        try:
            await until(lambda: self.record.state == "Healthy", "Healthy", within)
        except AssertionError as exc:
            seen = await gather(self.ops, self.pods, self.record.primary)
            raise AssertionError(
                f"{exc}; state {self.record.state}, primary {self.primary}: {seen}"
            ) from None

    async def caught_up(self, pods: Sequence[str], within: float = 60.0) -> None:
        """Wait until each of ``pods`` applied the primary's current position."""
        position = (await self.ops.status(self.primary)).position or ""
        for pod in pods:
            await until(partial(self.ops.wait_for_position, pod, position, 5), f"{pod} at {position}", within)

    async def close(self) -> None:
        self.stopped.set()
        if self.task is not None:
            await self.task
        await self.ops.close()
        for client in self.agents.values():
            await client.close()
        for runner in self.runners.values():
            await runner.cleanup()


async def _serve_agent(engine: Engine, server: Server, token: str, port: int) -> web.AppRunner:
    """The real agent app over ``server``'s engine, listening on 127.0.0.1:``port``."""
    runner = web.AppRunner(make_app(make_driver(engine.name, server.engine_config()), token))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


async def start_cluster(engine: Engine, members: int = 3) -> Cluster:
    """Servers, agents, the loop running; returns once Healthy with the application's table in place."""
    pods = [f"db-{i}" for i in range(members)]
    servers = engine.start(pods)
    token = secrets.token_urlsafe(24)
    runners: dict[str, web.AppRunner] = {}
    endpoints, agents = {}, {}
    try:
        for pod in pods:
            port = free_port()
            runners[pod] = await _serve_agent(engine, servers[pod], token, port)
            url = f"http://127.0.0.1:{port}"
            endpoints[pod] = Endpoint(url, "127.0.0.1", servers[pod].port)
            agents[pod] = AgentClient(url, token, timeout=60)
    except BaseException:
        for runner in runners.values():
            await runner.cleanup()
        raise
    ops = AgentOps(endpoints.__getitem__, token, engine.replication(), pods=pods)
    store = registry.get(engine.name)
    # As KubeClusterRecord.load with spec.failover.rebuildErrant at its default (True).
    base = ClusterView((), None, detection_seconds=DETECTION_SECONDS, rebuild_errant=store.rebuilds_errant)
    record = FakeRecord(pods, base)
    loop: Loop | MembershipLoop
    if store.ha_mode is HAMode.ENGINE_ELECTED:
        loop = MembershipLoop(ops, record, interval=INTERVAL_SECONDS)
    else:
        loop = Loop(ops, record, store.compare_positions, interval=INTERVAL_SECONDS, wait_timeout=30)
    cluster = Cluster(engine, pods, servers, record, ops, loop, agents, runners, token)
    cluster.task = asyncio.create_task(loop.run(cluster.stopped))
    try:
        await cluster.healthy()
        agent = agents[cluster.primary]
        await agent.ensure_database(APP_DB)
        await agent.ensure_user(
            APP_USER, "app-Secret-1", [Grant(database=APP_DB, privileges=[Privilege.READ_WRITE])]
        )
        engine.create_table(servers[cluster.primary])
        await cluster.caught_up([p for p in pods if p != cluster.primary])
    except BaseException:
        await cluster.close()
        raise
    return cluster


@contextlib.asynccontextmanager
async def running(engine: Engine, members: int = 3) -> AsyncIterator[Cluster]:
    """A started cluster (``start_cluster``); loop, agents and servers stopped on exit."""
    try:
        cluster = await start_cluster(engine, members)
        try:
            yield cluster
        finally:
            await cluster.close()
    finally:
        engine.stop()


async def failover_round(cluster: Cluster, writer: Writer, min_acks: int = 20) -> tuple[str, str, float]:
    """Kill the primary under load; wait for a new one taking writes: (old, new, write gap in s)."""
    old, start = cluster.primary, time.monotonic()
    await until(lambda: writer.on(old, start) >= min_acks, f"{min_acks} writes on {old}")
    at = time.monotonic()
    cluster.kill(old)
    await until(lambda: cluster.record.primary != old, "a new primary in status")
    new = cluster.primary
    await until(lambda: writer.on(new, at) >= min_acks, f"{min_acks} writes on the new primary {new}")
    return old, new, writer.gap(old, at)


async def switchover_round(cluster: Cluster, writer: Writer, target: str, min_acks: int = 20) -> float:
    """Ask for ``target`` under load; return the client's write gap once it took writes."""
    old, start = cluster.primary, time.monotonic()
    await until(lambda: writer.on(old, start) >= min_acks, f"{min_acks} writes on {old}")
    at = time.monotonic()
    cluster.switchover(target)
    await until(lambda: cluster.primary == target, f"{target} recorded as the primary")
    await until(lambda: writer.on(target, at) >= min_acks, f"{min_acks} writes on {target}")
    return writer.gap(old, at)


async def rejoin(cluster: Cluster, pod: str) -> None:
    """Restart ``pod``'s engine and wait until it replicates from the primary again (Healthy)."""
    await asyncio.to_thread(cluster.restart, pod)
    await cluster.healthy()


def missing_and_duplicates(cluster: Cluster, writer: Writer) -> tuple[set[int], int]:
    """(acknowledged ids absent from the primary, ids stored more than once there)."""
    stored = cluster.engine.ids(cluster.servers[cluster.primary])
    acked = {a.write_id for a in writer.acked}
    return acked - set(stored), len(stored) - len(set(stored))


async def partition_round(cluster: Cluster) -> None:
    """Fencing under partition (docs/clustering.md, "Demoting a primary"), asserted.

    The primary's agent becomes unreachable (``cut``) while its engine keeps running and a client on its
    side keeps writing: the loop fails over (stopping the replicas' receivers, I3), so the client's next
    commit waits for a semi-sync acknowledgement no replica will send. Other clients write on the new
    primary. When the agent is back (``heal``) the loop demotes, quarantines or rebuilds the old
    primary; whichever, it must become read-only, the waiting commit must end in an error (the client is
    back, on the new primary), and no write acknowledged by either client may be missing from the new
    primary. Before the fence ended client sessions first, the repointing hung in ``SET GLOBAL
    read_only`` behind that commit: the member stayed writable, its client waiting for semi-sync's
    timeout (a day), which would then have acknowledged it.
    """
    old = cluster.primary
    cut_off = Writer(cluster).start()
    others: Writer | None = None
    try:
        await until(lambda: cut_off.on(old) >= 20, f"writes on {old}")
        cut_at = time.monotonic()
        await cluster.cut(old)
        await until(lambda: cluster.record.primary != old, "a new primary in status")
        new = cluster.primary
        others = Writer(cluster, first_id=1_000_000).start()  # the rw Service's clients, on the new primary
        await until(lambda: others.on(new) >= 50, f"writes on the new primary {new}")
        last = max(a.at for a in cut_off.acked if a.pod == old) - cut_at
        await cluster.heal(old)
        await until(
            lambda: cut_off.on(new, cut_at) >= 5, "the cut-off client writing on the new primary", 120
        )

        async def fenced() -> bool:
            try:
                return (await cluster.ops.status(old)).read_only
            except MemberUnreachable:  # a member being rebuilt (MySQL's clone restarts it)
                return False

        await until(fenced, f"{old} read-only again", 120)
        assert not [a for a in cut_off.acked if a.pod == old and a.at > cut_at + last]
        print(f"partition of {old}: its last acknowledgement {last:.2f}s after the cut (replicas streaming"
              " until the failover stopped them), none after")  # fmt: skip
    finally:
        cut_off.stop()
        if others is not None:
            others.stop()
    stored = set(cluster.engine.ids(cluster.servers[cluster.primary]))
    acked = {a.write_id: a for w in (cut_off, others) if w is not None for a in w.acked}
    lost = sorted(set(acked) - stored)
    assert not lost, [(i, acked[i].pod, round(acked[i].at - cut_at, 2)) for i in lost]
