"""Prometheus metrics of the operator (names documented in docs/operations.md, used by the dashboard).

Registered once per process: the composition root (handlers/main.py) builds ONE ``OperatorMetrics`` on
prometheus-client's default registry (with its process and platform collectors) and every part gets it
injected through ``Deps.metrics``; a unit test builds its own on a fresh registry, as the agent does
(agent/metrics.py). Reconcile records its own outcome; clustering and backups record theirs here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

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
        # Restore verification (spec.backup.verify), per owner; "kind" is DatabaseInstance or DatabaseCluster.
        owner = ["namespace", "kind", "owner"]
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
        self.member_lag = Gauge(
            "kubetrove_member_lag_seconds",
            "Replication lag per member",
            ["namespace", "cluster", "pod"],
            registry=r,
        )
        # A cluster member's data volume as its agent measures it (statvfs of the data directory).
        member = ["namespace", "cluster", "pod"]
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
