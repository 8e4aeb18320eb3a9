"""The frozen view of a cluster that ``decide`` reasons about.

``observe`` builds one ``ClusterView`` per cycle from the DatabaseCluster's status and spec plus one agent
``/v1/status`` call per member. Everything time-dependent is already reduced to numbers here (how long a
member has been unreachable), so ``decide`` needs no clock and unit tests can state scenarios literally.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """A member's role as its engine reports it (agent ``Status.role``)."""

    PRIMARY = "primary"
    REPLICA = "replica"
    STANDALONE = "standalone"
    MEMBER = "member"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MemberView:
    """One member as observed in this cycle."""

    pod: str
    index: int
    reachable: bool  # the agent answered /v1/status this cycle
    healthy: bool = False  # the engine answers queries
    role: Role = Role.UNKNOWN
    read_only: bool = True
    position: str | None = None  # applied (executed) position
    received_position: str | None = None  # received (retrieved / relay log / receive LSN) position
    source: str | None = None  # pod this member replicates from, if a replica
    replication_running: bool = False
    # How long the member has been unreachable or unhealthy, in seconds (0 when fine now).
    down_for_seconds: float = 0.0
    diverged: bool = False  # its source refused it for transactions the source never had (errant)
    rebuilding: bool = False  # a rebuild from a donor is running in its agent (Status.rebuilding)
    rebuild_error: str | None = None  # why its last rebuild failed (reported during the agent's back-off)

    @property
    def best_position(self) -> str | None:
        """What the member holds: what it received if known (it will apply it), else what it applied."""
        return self.received_position or self.position


@dataclass(frozen=True)
class ClusterView:
    """The whole cluster as observed in this cycle, plus the parts of spec and status that matter."""

    members: tuple[MemberView, ...]
    current_primary: str | None  # status.primary: the single source of truth for who is primary
    wanted_primary: str | None = None  # spec.primary: a declarative switchover request
    automatic_failover: bool = True
    detection_seconds: float = 5.0
    # Semi-synchronous acknowledgements a commit waits for (MySQL rpl_semi_sync_source_wait_for_replica_count,
    # MariaDB: always 1, PostgreSQL: the N of synchronous_standby_names 'ANY N (...)').
    ack_count: int = 1
    errant: frozenset[str] = frozenset()  # members already quarantined (status.errantMembers)
    # Datastore.rejoin_rewinds: a member ahead of the primary is rewound on rejoin (PostgreSQL), not errant.
    rejoin_rewinds: bool = False
    # Datastore.rebuilds_errant and spec.failover.rebuildErrant: a quarantined member is re-provisioned
    # from the primary (I7), discarding what only it holds.
    rebuild_errant: bool = False

    def member(self, pod: str | None) -> MemberView | None:
        """The member named ``pod``, if it is in the view."""
        return next((m for m in self.members if m.pod == pod), None)
