"""Operator configuration, from the environment (the Helm chart sets these on the Deployment)."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubetrove.agent.protocol import base_url

DEFAULT_AGENT_IMAGE = "kubetrove/agent:0.1.0"


@dataclass(frozen=True)
class OperatorConfig:
    """Settings of one operator process."""

    agent_image: str = DEFAULT_AGENT_IMAGE
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    lease_namespace: str = "default"
    lease_name: str = "kubetrove-operator"
    lease_seconds: int = 15
    # Unique per process, so a restarted operator is a new holder (client-go uses hostname + uuid).
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    status_interval: float = 30.0  # the periodic status refresh (StatefulSet events refresh sooner)
    metrics_port: int = 8080  # 0: no metrics endpoint
    # "namespace/pod" -> agent base URL. Only for tests whose pods are fake (kwok) while a real agent
    # runs on the host; in a real cluster agents are reached at their pod IP.
    agent_endpoints: Mapping[str, str] = field(default_factory=dict)

    def agent_url(self, namespace: str, pod: str, ip: str) -> str:
        """Where the agent of ``pod`` listens."""
        return self.agent_endpoints.get(f"{namespace}/{pod}") or base_url(ip)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        """KUBETROVE_AGENT_IMAGE, KUBETROVE_NAMESPACES (comma-separated), KUBETROVE_LEASE_NAMESPACE
        (else POD_NAMESPACE, else "default"), KUBETROVE_LEASE_NAME, KUBETROVE_STATUS_INTERVAL,
        KUBETROVE_METRICS_PORT, KUBETROVE_AGENT_ENDPOINTS (JSON: {"namespace/pod": "http://host:port"})."""
        e = os.environ if env is None else env
        spaces = tuple(n.strip() for n in e.get("KUBETROVE_NAMESPACES", "").split(",") if n.strip())
        return cls(
            agent_image=e.get("KUBETROVE_AGENT_IMAGE", DEFAULT_AGENT_IMAGE),
            namespaces=spaces,
            lease_namespace=e.get("KUBETROVE_LEASE_NAMESPACE", e.get("POD_NAMESPACE", "default")),
            lease_name=e.get("KUBETROVE_LEASE_NAME", "kubetrove-operator"),
            status_interval=float(e.get("KUBETROVE_STATUS_INTERVAL", "30")),
            metrics_port=int(e.get("KUBETROVE_METRICS_PORT", "8080")),
            agent_endpoints=json.loads(e.get("KUBETROVE_AGENT_ENDPOINTS", "{}")),
        )
