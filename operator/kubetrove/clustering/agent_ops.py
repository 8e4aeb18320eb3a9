"""``MemberOps`` through the members' agents (the gateway, kubetrove/members.py): the loop's production seam.

A member is named by its pod; a ``Resolver`` turns the name into where its agent listens and where the
other members reach its engine (in Kubernetes ``<pod>.<headless>.<ns>.svc``; in tests a loopback port).

Error mapping (the loop only knows ``MemberUnreachable``):
- no connection, a timeout, or a 5xx reply (the agent answers but its engine does not: 503) ->
  ``MemberUnreachable``. A timed-out call may still have run; the loop re-observes, it never repeats.
- a 4xx reply is a refusal the operator must see (bad request, 409 "needs a restart"): ``AgentRefused``
  propagates and ends the cycle; the next cycle observes again.

Status calls use a short timeout and no retry (a dead member must be detected quickly, and detection
is the loop's job: its ``DownClock`` is the retry); actions use a longer timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

from kubetrove.agent.protocol import MembersReply, SetMember, Status, VolumeUsage
from kubetrove.clustering.ops import MembershipRefused, MemberUnreachable, RebuildRefused
from kubetrove.members import (
    Agent,
    AgentNotReady,
    AgentRefused,
    Agents,
    AgentUnreachable,
    Connect,
    http_client,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """Where one member's agent listens, and how the other members reach its engine."""

    agent_url: str
    host: str
    port: int

    @property
    def address(self) -> str:
        """``host:port``, the form the drivers report a replica's source in (``Status.source_host``)."""
        return f"{self.host}:{self.port}"


Resolver = Callable[[str], Endpoint]


@dataclass(frozen=True)
class Replication:
    """The replication account, and the engine parameters that follow a member's role.

    ``on_promote`` is applied before a member accepts writes, ``on_demote`` after it became a replica
    (MariaDB: ``rpl_semi_sync_master_enabled``; docs/clustering.md, "Lossless semi-sync").
    """

    user: str
    password: str
    on_promote: Mapping[str, str] | None = None
    on_demote: Mapping[str, str] | None = None


class AgentOps:
    """``MemberOps`` over HTTP: the members' agents through one ``Agents`` block of the gateway."""

    def __init__(
        self,
        resolve: Resolver,
        token: str,
        replication: Replication,
        *,
        pods: Iterable[str] = (),
        status_timeout: float = 2.0,
        action_timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        connect: Connect = http_client,
    ) -> None:
        self._resolve = resolve
        self._replication = replication
        self._agents = Agents(
            connect, token, timeout=action_timeout, retries=1, probe_timeout=status_timeout, session=session
        )
        # Resolved up front so a replica's reported source maps back to its pod from the first cycle on.
        self._endpoints: dict[str, Endpoint] = {pod: resolve(pod) for pod in pods}

    async def close(self) -> None:
        """Close the clients (and the shared session if this object created it)."""
        await self._agents.close()

    def _endpoint(self, pod: str) -> Endpoint:
        if pod not in self._endpoints:
            self._endpoints[pod] = self._resolve(pod)
        return self._endpoints[pod]

    async def _call(self, pod: str, what: str, fn: Callable[[Agent], Awaitable[T]], probe: bool = False) -> T:
        try:
            return await self._agents.call(pod, self._endpoint(pod).agent_url, fn, probe=probe)
        except (AgentUnreachable, AgentNotReady) as exc:
            raise MemberUnreachable(f"{what} {exc}") from exc

    def _source_pod(self, address: str | None) -> str | None:
        """The pod whose engine is at ``address`` (as the driver reported it), else the address unchanged."""
        if address is None:
            return None
        return next((pod for pod, ep in self._endpoints.items() if ep.address == address), address)

    async def status(self, pod: str) -> Status:
        """The agent's status, with ``source_host`` translated back to a pod name when it is a member.

        Any refusal of the probe (4xx too) means "unreachable": otherwise one member answering 401 (a
        rotated token) or 404 (not our agent) would end every cycle before decide, and the others could
        never fail over. Refusals of actions still propagate and end the cycle.
        """
        try:
            st = await self._call(pod, "status", lambda a: a.status(), probe=True)
        except AgentRefused as exc:
            raise MemberUnreachable(f"status {exc}") from exc
        source = self._source_pod(st.source_host)
        return st if source == st.source_host else st.model_copy(update={"source_host": source})

    async def volume(self, pod: str) -> VolumeUsage | None:
        """The member's data volume alone (GET /v1/volume: no engine call), probed like the status."""
        try:
            return await self._call(pod, "volume", lambda a: a.volume(), probe=True)
        except AgentRefused as exc:  # an agent older than the route (404), a rotated token (401)
            raise MemberUnreachable(f"volume {exc}") from exc

    async def set_source(self, pod: str, source_pod: str) -> None:
        """Point ``pod`` at ``source_pod``'s engine with the replication account."""
        src, r = self._endpoint(source_pod), self._replication
        await self._call(pod, "set_source", lambda a: a.set_source(src.host, src.port, r.user, r.password))
        if r.on_demote:
            demote = dict(r.on_demote)
            await self._call(pod, "set_source", lambda a: a.apply_parameters(demote))

    async def stop_replication(self, pod: str) -> None:
        """Stop the member's receiver (IO thread / WAL receiver)."""
        await self._call(pod, "stop_replication", lambda a: a.stop_replication())

    async def wait_for_position(self, pod: str, position: str, timeout_seconds: float) -> bool:
        """True once ``pod`` applied ``position``; False if ``timeout_seconds`` passed first."""
        reply = await self._call(pod, "wait", lambda a: a.wait_for_position(position, timeout_seconds))
        return reply.reached

    async def promote(self, pod: str) -> None:
        """Role parameters first (lossless semi-sync before the first write), then accept writes."""
        if self._replication.on_promote:
            params = dict(self._replication.on_promote)
            await self._call(pod, "promote", lambda a: a.apply_parameters(params))
        await self._call(pod, "promote", lambda a: a.promote())

    async def fence(self, pod: str) -> None:
        """Refuse client writes."""
        await self._call(pod, "fence", lambda a: a.fence())

    async def rebuild(self, pod: str, source_pod: str) -> str:
        """Start re-provisioning ``pod`` from ``source_pod`` with the replication account; what is discarded.

        A refusal (409, 501) is a RebuildRefused: the member stays quarantined and the cycle goes on."""
        src, r = self._endpoint(source_pod), self._replication
        try:
            reply = await self._call(
                pod, "rebuild", lambda a: a.rebuild(src.host, src.port, r.user, r.password)
            )
        except AgentRefused as exc:
            detail = exc.reply.detail if exc.reply else str(exc)
            raise RebuildRefused(f"{pod}: {detail}") from exc
        return reply.discarded

    async def step_up(self, pod: str) -> None:
        """Engine-elected sets: ask ``pod`` to stand for election (spec.primary); the voters' refusal
        (409) is a MembershipRefused, asked again next cycle."""
        try:
            await self._call(pod, "step_up", lambda a: a.promote())
        except AgentRefused as exc:
            if exc.status == 409 and exc.reply:
                raise MembershipRefused(f"{pod}: {exc.reply.detail}") from exc
            raise

    async def set_members(self, pod: str, members: Sequence[str]) -> MembersReply:
        """Engine-elected sets: ``members`` (pods; id = position, the ordinal) by their engine address."""
        wanted = [SetMember(id=i, host=self._endpoint(m).address) for i, m in enumerate(members)]
        try:
            return await self._call(pod, "set_members", lambda a: a.set_members(wanted))
        except AgentRefused as exc:
            if exc.status == 409 and exc.reply:  # not the primary, or the set is busy: asked again later
                raise MembershipRefused(f"{pod}: {exc.reply.detail}") from exc
            raise
