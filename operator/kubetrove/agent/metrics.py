"""Prometheus metrics of one agent, in a registry of its own (several apps can live in one test process).

Only numbers and the engine/role labels are exported: no names, positions or secrets, because
``/metrics`` is served without the token.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from kubetrove.agent.protocol import Role, Status, VolumeUsage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AgentMetrics:
    """The agent's gauges and counters; ``observe`` copies a Status into them."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.observed_at: float | None = None  # time.monotonic() of the last observe()
        self.refreshing = asyncio.Lock()  # one engine status per refresh, however many scrapes wait
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["engine"]
        self.up = Gauge("kubetrove_engine_up", "1 if the engine answered", labels, registry=self.registry)
        self.role = Gauge(
            "kubetrove_engine_role",
            "1 for the member's current role",
            [*labels, "role"],
            registry=self.registry,
        )
        self.read_only = Gauge(
            "kubetrove_engine_read_only", "1 if the engine refuses writes", labels, registry=self.registry
        )
        self.lag = Gauge(
            "kubetrove_replication_lag_seconds",
            "replica lag (0 on a primary)",
            labels,
            registry=self.registry,
        )
        self.replicating = Gauge(
            "kubetrove_replication_running", "1 if replication threads run", labels, registry=self.registry
        )
        self.connections = Gauge(
            "kubetrove_engine_connections", "client connections to the engine", labels, registry=self.registry
        )
        # The data volume (agent/volume.py), measured without the engine: reported while it is down too.
        self.volume_used = Gauge(
            "kubetrove_volume_used_bytes", "data volume: bytes used", labels, registry=self.registry
        )
        self.volume_available = Gauge(
            "kubetrove_volume_available_bytes",
            "data volume: bytes still writable by the engine (root's reserve excluded)",
            labels,
            registry=self.registry,
        )
        self.volume_capacity = Gauge(
            "kubetrove_volume_capacity_bytes", "data volume: filesystem size", labels, registry=self.registry
        )
        self.requests = Counter(
            "kubetrove_agent_requests",
            "agent API requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )

    def observe(self, status: Status | None) -> None:
        """Record a fresh Status, or ``None`` when the engine did not answer."""
        self.observed_at = time.monotonic()
        self.up.labels(self.engine).set(0 if status is None or not status.healthy else 1)
        current = Role.UNKNOWN if status is None else status.role
        for role in Role:
            self.role.labels(self.engine, role.value).set(1 if role is current else 0)
        if status is None:
            return
        self.read_only.labels(self.engine).set(1 if status.read_only else 0)
        self.lag.labels(self.engine).set(status.lag_seconds or 0.0)
        self.replicating.labels(self.engine).set(1 if status.replication_running else 0)
        if status.connections is not None:
            self.connections.labels(self.engine).set(status.connections)

    def observe_volume(self, usage: VolumeUsage | None) -> None:
        """Record the data volume's filesystem (None: not measured; the gauges keep no stale figure)."""
        gauges = (self.volume_used, self.volume_available, self.volume_capacity)
        if usage is None:
            for gauge in gauges:
                gauge.clear()
            return
        values = (usage.used_bytes, usage.available_bytes, usage.capacity_bytes)
        for gauge, value in zip(gauges, values, strict=True):
            gauge.labels(self.engine).set(value)

    def fresh(self, max_age: float) -> bool:
        """True if the gauges were observed less than ``max_age`` seconds ago."""
        return self.observed_at is not None and time.monotonic() - self.observed_at < max_age

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
