"""Prometheus metrics of the operator (names documented in docs/operations.md, used by the dashboard).

Defined once, here, on prometheus-client's default registry. Reconcile records its own outcome; the
clustering and backup code record theirs with the metrics below.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter("kubetrove_reconcile_total", "Reconciles by outcome", ["kind", "result"])
RECONCILE_SECONDS = Histogram("kubetrove_reconcile_duration_seconds", "Duration of one reconcile", ["kind"])
FAILOVERS = Counter(
    "kubetrove_failovers_total", "Automatic failovers completed", ["namespace", "cluster", "engine"]
)
SWITCHOVERS = Counter(
    "kubetrove_switchovers_total", "Declarative switchovers completed", ["namespace", "cluster", "engine"]
)
BACKUP_SECONDS = Histogram(
    "kubetrove_backup_duration_seconds", "Duration of completed backups", ["engine", "method"]
)
BACKUP_BYTES = Counter(
    "kubetrove_backup_bytes_total", "Bytes written by completed backups", ["engine", "method"]
)
BACKUP_FAILURES = Counter("kubetrove_backup_failures_total", "Failed backups", ["engine", "method"])
# Restore verification (spec.backup.verify), per owner; "kind" is DatabaseInstance or DatabaseCluster.
BACKUP_VERIFICATIONS = Counter(
    "kubetrove_backup_verifications_total",
    "Restore verifications ended, by result (success, failure)",
    ["namespace", "kind", "owner", "result"],
)
BACKUP_VERIFICATION_OK = Gauge(
    "kubetrove_backup_verification_ok",
    "1 when the owner's last restore verification succeeded, 0 when it failed",
    ["namespace", "kind", "owner"],
)
BACKUP_VERIFICATION_SUCCESS_TIME = Gauge(
    "kubetrove_backup_verification_last_success_timestamp_seconds",
    "Unix time the owner's last successful restore verification ended",
    ["namespace", "kind", "owner"],
)
MEMBER_LAG = Gauge(
    "kubetrove_member_lag_seconds", "Replication lag per member", ["namespace", "cluster", "pod"]
)
MEMBERS = Gauge("kubetrove_members", "Members per role", ["namespace", "cluster", "role"])


@contextmanager
def reconcile_timer(kind: str, invalid: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
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
        RECONCILES.labels(kind, result).inc()
        RECONCILE_SECONDS.labels(kind).observe(time.monotonic() - start)


def serve(port: int) -> None:
    """Serve /metrics on ``port`` (0: do not serve)."""
    if port:
        start_http_server(port)
