"""Prometheus metrics of the operator (names documented in docs/operations.md, used by the dashboard).

Registered once per process: the composition root (handlers/main.py) builds ONE ``OperatorMetrics`` on
prometheus-client's default registry (with its process and platform collectors) and every part gets it
injected through ``Deps.metrics``; a unit test builds its own on a fresh registry, as the agent does
(agent/metrics.py). Reconcile records its own outcome; clustering and backups record theirs here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class OperatorMetrics:
    """Every operator metric, on ``registry`` (a fresh one when not given)."""

    def __init__(self, registry: CollectorRegistry | None = None, version: str = "") -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        # Which build runs (an "info" gauge, always 1): after `helm upgrade`, the scrape names the new one.
        self.info = Gauge(
            "kubetrove_operator_info", "The running operator's version", ["version"], registry=r
        )
        if version:
            self.info.labels(version).set(1)
        # Whether this process holds the leadership Lease: a standby serves 0 (so "no instance leads" is
        # told apart from "no instance runs"), the holder 1, and a holder that lost it 0 until it exits.
        self.leader = Gauge(
            "kubetrove_operator_leader",
            "1 while this operator process holds the leadership Lease",
            registry=r,
        )
        self.reconciles = Counter(
            "kubetrove_reconcile_total", "Reconciles by outcome", ["kind", "result"], registry=r
        )
        self.reconcile_seconds = Histogram(
            "kubetrove_reconcile_duration_seconds", "Duration of one reconcile", ["kind"], registry=r
        )
        cluster = ["namespace", "cluster", "engine"]
        self.failovers = Counter(
            "kubetrove_failovers_total", "Automatic failovers completed", cluster, registry=r
        )
        self.switchovers = Counter(
            "kubetrove_switchovers_total", "Declarative switchovers completed", cluster, registry=r
        )
        self.backup_seconds = Histogram(
            "kubetrove_backup_duration_seconds",
            "Duration of completed backups",
            ["engine", "method"],
            # Backups take seconds (a small logical dump) to hours (a physical copy of a large volume).
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, float("inf")),
            registry=r,
        )
        self.backup_bytes = Counter(
            "kubetrove_backup_bytes_total",
            "Bytes written by completed backups",
            ["engine", "method"],
            registry=r,
        )
        self.backup_failures = Counter(
            "kubetrove_backup_failures_total", "Failed backups", ["engine", "method"], registry=r
        )
        # Per owner of backups (DatabaseInstance or DatabaseCluster, "kind"): its schedule
        # (spec.backup.schedule) and its restore verification (spec.backup.verify).
        owner = ["namespace", "kind", "owner"]
        self.backup_schedule_interval = Gauge(
            "kubetrove_backup_schedule_interval_seconds",
            "Seconds between the two latest slots of the owner's backup schedule",
            owner,
            registry=r,
        )
        self.backup_last_completion = Gauge(
            "kubetrove_backup_last_completion_timestamp_seconds",
            "Unix time the owner's newest scheduled backup completed (before the first completes: the time "
            "the first scheduled one was created)",
            owner,
            registry=r,
        )
        self.backup_verifications = Counter(
            "kubetrove_backup_verifications_total",
            "Restore verifications ended, by result (success, failure)",
            [*owner, "result"],
            registry=r,
        )
        self.backup_verification_ok = Gauge(
            "kubetrove_backup_verification_ok",
            "1 when the owner's last restore verification succeeded, 0 when it failed",
            owner,
            registry=r,
        )
        self.backup_verification_success_time = Gauge(
            "kubetrove_backup_verification_last_success_timestamp_seconds",
            "Unix time the owner's last successful restore verification ended",
            owner,
            registry=r,
        )
        # Recovery timing of the verification that ended last (docs/backup-verification.md).
        self.backup_restore_seconds = Gauge(
            "kubetrove_backup_restore_seconds",
            "Measured restore time (RTO) of the owner's last restore verification",
            owner,
            registry=r,
        )
        self.backup_verified_age_seconds = Gauge(
            "kubetrove_backup_verified_backup_age_seconds",
            "Age of the backup (since it completed) when the owner's last restore verification ended (RPO)",
            owner,
            registry=r,
        )
        self.backup_restore_target_seconds = Gauge(
            "kubetrove_backup_restore_target_seconds",
            "The owner's target restore time (spec.backup.verifyMaxRestoreSeconds) at its last verification",
            owner,
            registry=r,
        )
        # Per cluster member, as the clustering loop last observed it (clustering/gauges.py); the volume
        # series also per DatabaseInstance member (its Volume phase; the "cluster" label is its name).
        member = ["namespace", "cluster", "pod"]
        self.member_up = Gauge(
            "kubetrove_member_up",
            "1 when the member's agent answered and its engine is healthy, else 0",
            member,
            registry=r,
        )
        self.member_replicating = Gauge(
            "kubetrove_member_replicating",
            "1 when a replica's replication runs, 0 when it is stopped (replicas only)",
            member,
            registry=r,
        )
        self.member_errant = Gauge(
            "kubetrove_member_errant",
            "1 while the member is quarantined as errant (status.errantMembers), else 0",
            member,
            registry=r,
        )
        self.member_lag = Gauge(
            "kubetrove_member_lag_seconds", "Replication lag per member", member, registry=r
        )
        # A member's data volume as its agent measures it (statvfs of the data directory).
        self.member_volume_used = Gauge(
            "kubetrove_member_volume_used_bytes",
            "Bytes used on each member's data volume",
            member,
            registry=r,
        )
        self.member_volume_available = Gauge(
            "kubetrove_member_volume_available_bytes",
            "Bytes the engine can still write on each member's data volume",
            member,
            registry=r,
        )
        self.member_volume_capacity = Gauge(
            "kubetrove_member_volume_capacity_bytes",
            "Size of each member's data volume filesystem",
            member,
            registry=r,
        )
        self.members = Gauge(
            "kubetrove_members", "Members per role", ["namespace", "cluster", "role"], registry=r
        )
        # Every Kubernetes API call (k8s/client.py): how many per verb and resource, how long each waited
        # for a worker thread (the loop's executor) and how long it took once running. The first grows
        # when the operator queues its own calls, the second when the API server is slow.
        self.api_requests = Counter(
            "kubetrove_api_requests_total", "Kubernetes API calls", ["verb", "resource"], registry=r
        )
        self.api_queue_seconds = Histogram(
            "kubetrove_api_queue_seconds", "Wait of a Kubernetes API call for a worker thread", registry=r
        )
        self.api_request_seconds = Histogram(
            "kubetrove_api_request_duration_seconds",
            "Kubernetes API call, once running",
            ["verb"],
            registry=r,
        )

    def observe_api(self, verb: str, resource: str, queued: float, took: float) -> None:
        """One Kubernetes API call (``k8s.client.Observer``)."""
        self.api_requests.labels(verb, resource).inc()
        self.api_queue_seconds.observe(queued)
        self.api_request_seconds.labels(verb).observe(took)

    def start_backup_counters(self, methods: Mapping[str, Sequence[str]]) -> None:
        """``kubetrove_backup_failures_total`` at 0 for each engine's backup methods (engine -> methods).

        A counter series that first appears at 1 has no earlier sample, so ``increase()`` and ``rate()``
        count nothing for it: without this, the first failure after a start would raise no alert.
        """
        for engine, names in methods.items():
            for method in names:
                self.backup_failures.labels(engine, method)

    def forget_owner(self, namespace: str, kind: str, owner: str, schedule: bool, verification: bool) -> None:
        """Remove an owner's series of its backup schedule and/or its restore verification (the owner was
        deleted, or the spec turned them off): a stale series would keep an alert firing for good."""
        labels = (namespace, kind, owner)
        series: list[tuple[Gauge | Counter, tuple[str, ...]]] = []
        if schedule:
            series += [(g, labels) for g in (self.backup_schedule_interval, self.backup_last_completion)]
        if verification:
            series += [(self.backup_verifications, (*labels, result)) for result in ("success", "failure")]
            series += [
                (g, labels)
                for g in (
                    self.backup_verification_ok,
                    self.backup_verification_success_time,
                    self.backup_restore_seconds,
                    self.backup_verified_age_seconds,
                    self.backup_restore_target_seconds,
                )
            ]
        for metric, values in series:
            with suppress(KeyError):  # older prometheus-client raise KeyError for a series never set
                metric.remove(*values)

    @contextmanager
    def reconcile_timer(self, kind: str, invalid: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
        """Count and time one reconcile: ``success``, ``invalid`` (one of ``invalid`` raised) or ``error``."""
        start = time.monotonic()
        result = "error"
        try:
            yield
            result = "success"
        except invalid:
            result = "invalid"
            raise
        finally:
            self.reconciles.labels(kind, result).inc()
            self.reconcile_seconds.labels(kind).observe(time.monotonic() - start)

    def serve(self, port: int) -> None:
        """Serve /metrics of this registry on ``port`` (0: do not serve)."""
        if port:
            start_http_server(port, registry=self.registry)


@dataclass
class PodSeries:
    """The per-pod series (labels namespace, cluster, pod) of one resource's members.

    Each ``set`` replaces what a gauge said of the resource: a pod that is gone, or has nothing to report
    for that gauge, loses its series instead of keeping a stale figure an alert would go on firing on.
    ``expected``: pods the resource may have had a series for before this object knew of it (a
    DatabaseInstance's one pod, observed by a new object at each refresh), removed like the others.
    """

    namespace: str
    name: str  # the "cluster" label: the DatabaseCluster's or the DatabaseInstance's name
    expected: frozenset[str] = frozenset()
    _pods: dict[Gauge, set[str]] = field(default_factory=dict)  # the pods each gauge has a series for

    def set(self, gauge: Gauge, values: Mapping[str, float]) -> None:
        """Set ``gauge`` for each pod of ``values``; remove the pods it had a series for and no longer has."""
        for pod in (self._pods.get(gauge, set()) | self.expected) - set(values):
            with suppress(KeyError):
                gauge.remove(self.namespace, self.name, pod)
        for pod, value in values.items():
            gauge.labels(self.namespace, self.name, pod).set(value)
        self._pods[gauge] = set(values)

    def forget(self, gauges: Sequence[Gauge] = ()) -> None:
        """Remove every series this object set, and ``gauges``' series of the ``expected`` pods."""
        for gauge in [*self._pods, *(g for g in gauges if g not in self._pods)]:
            self.set(gauge, {})
