"""The narrow seams the clustering loop acts through (moco's ``dbop.Operator``).

``MemberOps`` reaches members (the agent client in production, an in-memory fake in unit tests);
``ClusterRecord`` reads and writes what the cluster's custom resource and pods say (``kubetrove.k8s``
in production). One line of contract per method; every method may raise ``MemberUnreachable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from kubetrove.agent.protocol import MembersReply, RingNode, Status, VolumeUsage
from kubetrove.clustering.snapshot import ClusterView


class MemberUnreachable(Exception):
    """The member's agent did not answer (connection refused, timeout, 5xx)."""


class RebuildRefused(Exception):
    """The member's agent refused a rebuild (409: writable, a rebuild already running, the clone failed
    to start; 501: the engine cannot): the member stays quarantined, the next cycle decides again."""


class MemberOps(Protocol):
    async def status(self, pod: str) -> Status:
        """The member's current status as its agent reports it."""
        ...

    async def volume(self, pod: str) -> VolumeUsage | None:
        """The member's data volume alone (answered while its engine is down; None: not measured)."""
        ...

    async def set_source(self, pod: str, source_pod: str) -> None:
        """Make ``pod`` a read-only replica of ``source_pod`` with GTID/LSN auto-positioning."""
        ...

    async def stop_replication(self, pod: str) -> None:
        """Stop receiving from the source (so a lost primary cannot gather acknowledgements)."""
        ...

    async def wait_for_position(self, pod: str, position: str, timeout_seconds: float) -> bool:
        """Wait until ``pod`` applied ``position``; False if the timeout passed first."""
        ...

    async def promote(self, pod: str) -> None:
        """Stop replicating and accept writes."""
        ...

    async def fence(self, pod: str) -> None:
        """Refuse client writes."""
        ...

    async def rebuild(self, pod: str, source_pod: str) -> str:
        """Start re-provisioning ``pod`` from ``source_pod`` (I7); returns what ``pod`` alone held and is
        discarded (the engine's position syntax, "" for nothing). May raise RebuildRefused."""
        ...


class MembershipRefused(Exception):
    """The member refused a membership change for now (not the primary, a reconfig in progress): 409."""


class StatusOps(Protocol):
    """The part of every loop's seam that observes (``observe.gather`` needs no more)."""

    async def status(self, pod: str) -> Status:
        """The member's current status as its agent reports it."""
        ...

    async def volume(self, pod: str) -> VolumeUsage | None:
        """The member's data volume alone (answered while its engine is down; None: not measured)."""
        ...


# Asks one member's agent for its data volume alone (``StatusOps.volume``).
AskVolume = Callable[[str], Awaitable[VolumeUsage | None]]


class MembershipOps(StatusOps, Protocol):
    """What the loop of an engine-elected set (MongoDB) needs: status, and the set's membership."""

    async def set_members(self, pod: str, members: Sequence[str]) -> MembersReply:
        """Ask ``pod`` to make the set exactly ``members`` (id = position); may raise MembershipRefused."""
        ...

    async def step_up(self, pod: str) -> None:
        """Ask ``pod`` to stand for election (a switchover the spec asks for; the set still votes); may
        raise MembershipRefused (the voters refused, for now)."""
        ...


class ClusterRecord(Protocol):
    async def load(self) -> tuple[list[str], ClusterView]:
        """The member pods in index order and a member-less view carrying spec and status fields."""
        ...

    async def write_primary(self, primary: str) -> None:
        """Persist status.primary (the single source of truth, invariant I1) before anything acts on it."""
        ...

    async def write_observation(
        self,
        state: str,
        members: Mapping[str, Status | None],
        errant: tuple[str, ...],
        reasons: tuple[str, ...],
        ring: Mapping[str, RingNode] | None = None,
    ) -> None:
        """Record the state, members, errant members and reasons in status (idempotent); ``ring``: each
        member's node as the ring sees it (rings only)."""
        ...

    async def grow_storage(self, members: Mapping[str, Status | None], ask: AskVolume) -> None:
        """Storage autogrow (kubetrove/autogrow.py) from this cycle's statuses; ``ask`` fetches the
        volume of a member whose status failed (an engine stopped on a full disk). Idempotent."""
        ...

    async def label_roles(self, roles: Mapping[str, str]) -> None:
        """Set the role label (primary | replica | errant) on each pod; the Services follow the labels."""
        ...

    async def event(self, reason: str, message: str, warning: bool = False) -> None:
        """Emit a Kubernetes Event on the cluster resource."""
        ...

    async def record_rebuild(self, pod: str, source: str, discarded: str) -> None:
        """Record in status that ``pod`` is being rebuilt from ``source``, discarding ``discarded`` (I7)."""
        ...
