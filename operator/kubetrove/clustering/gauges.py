"""The per-cluster series of the clustering loop (docs/operations.md, "Metrics"; the alert rules in
charts/kubetrove/alerts/ read them).

Every cycle's observation replaces the previous one (``metrics.PodSeries``): a member that is gone, or
that has nothing to report for a series (no lag, no volume figure, not a replica), loses that series
instead of keeping a stale figure an alert would go on firing on. The volume series are recorded by
``observation.VolumeSeries``, which a DatabaseInstance's Volume phase uses too. ``forget`` drops every
series of the cluster when its loop ends (the cluster was deleted, or the operator stops): a deleted
cluster must not keep a member "down".

Members per role: a ring of equals (HA mode NO_PRIMARY, Cassandra) has no ``primary`` or ``replica``
series, so "no primary" (``kubetrove_members{role="primary"} == 0``) is only ever said of engines that
have one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetrove.agent.protocol import Role, Status
from kubetrove.api.resources import ObjectRef
from kubetrove.api.status import MemberRole
from kubetrove.datastores.base import Datastore, HAMode
from kubetrove.metrics import OperatorMetrics, PodSeries
from kubetrove.observation import VolumeSeries


@dataclass
class ClusterGauges:
    """One DatabaseCluster's series in ``metrics`` (None: nothing is recorded)."""

    metrics: OperatorMetrics | None
    ref: ObjectRef
    store: Datastore
    series: PodSeries = field(init=False)  # the per-pod series (kubetrove/metrics.py)
    volumes: VolumeSeries = field(init=False)  # the per-pod volume series, shared with instances

    def __post_init__(self) -> None:
        self.series = PodSeries(self.ref.namespace, self.ref.name)
        self.volumes = VolumeSeries(self.metrics, self.series)

    @property
    def _cluster(self) -> tuple[str, str]:
        return self.ref.namespace, self.ref.name

    def roles(self) -> list[MemberRole]:
        """The roles counted in ``kubetrove_members`` for this engine."""
        if self.store.ha_mode is HAMode.NO_PRIMARY:
            return [MemberRole.MEMBER, MemberRole.UNKNOWN]
        return list(MemberRole)

    def start(self) -> None:
        """The failover and switchover counters at 0, so the first one is seen by ``increase()``."""
        if self.metrics is None:
            return
        labels = (*self._cluster, self.store.engine.value)
        self.metrics.failovers.labels(*labels)
        self.metrics.switchovers.labels(*labels)

    def record(
        self, members: list[dict[str, Any]], statuses: Mapping[str, Status | None], errant: tuple[str, ...]
    ) -> None:
        """Members per role, and per member: up, replicating, errant, lag and volume, as just observed.

        ``members`` are the ``status.members`` entries (wire form) built from ``statuses`` (the agents'
        replies; None: unreachable); ``errant`` the quarantined members (status.errantMembers).
        """
        m = self.metrics
        if m is None:
            return
        for role in self.roles():
            count = sum(1 for x in members if x.get("role") == role.value)
            m.members.labels(*self._cluster, role.value).set(count)
        pods = [member["pod"] for member in members]
        per_pod = self.series.set
        per_pod(m.member_up, {p: 1.0 if (st := statuses.get(p)) and st.healthy else 0.0 for p in pods})
        replicas = {p: st for p, st in statuses.items() if st is not None and st.role is Role.REPLICA}
        per_pod(m.member_replicating, {p: float(st.replication_running) for p, st in replicas.items()})
        per_pod(m.member_errant, {p: float(p in errant) for p in {*pods, *errant}})
        per_pod(m.member_lag, {x["pod"]: x["lagSeconds"] for x in members if x.get("lagSeconds") is not None})
        self.volumes.record(members)

    def forget(self) -> None:
        """Remove every series of this cluster (its loop has ended)."""
        if self.metrics is None:
            return
        self.series.forget()
        for role in MemberRole:
            with contextlib.suppress(KeyError):
                self.metrics.members.remove(*self._cluster, role.value)
        for counter in (self.metrics.failovers, self.metrics.switchovers):
            with contextlib.suppress(KeyError):
                counter.remove(*self._cluster, self.store.engine.value)
