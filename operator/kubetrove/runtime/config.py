"""Operator configuration, from the environment (the Helm chart sets these on the Deployment).

Read ONCE per process, by the composition root (handlers/main.py), and passed in from there: nothing
else in the operator reads the environment.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubetrove.agent.protocol import base_url
from kubetrove.api.common import Engine

DEFAULT_AGENT_IMAGE = "kubetrove/agent:0.1.0"
DEFAULT_HEALTH_PORT = 8081
# KUBETROVE_AGENT_IMAGE_<ENGINE> (the Helm chart sets one per engine): the suffix is the Engine value in
# upper case, so adding an engine needs no change here.
AGENT_IMAGE_PREFIX = "KUBETROVE_AGENT_IMAGE_"


def agent_images_from_env(env: Mapping[str, str]) -> dict[Engine, str]:
    """The per-engine agent images set in ``env`` (engines without one use the fallback image)."""
    return {
        e: env[AGENT_IMAGE_PREFIX + e.value.upper()]
        for e in Engine
        if env.get(AGENT_IMAGE_PREFIX + e.value.upper())
    }


@dataclass(frozen=True)
class OperatorConfig:
    """Settings of one operator process."""

    agent_image: str = DEFAULT_AGENT_IMAGE  # the fallback for engines without an image of their own
    agent_images: Mapping[Engine, str] = field(default_factory=dict)
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    lease_namespace: str = "default"
    lease_name: str = "kubetrove-operator"
    lease_seconds: int = 15
    # Unique per process, so a restarted operator is a new holder (client-go uses hostname + uuid).
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    status_interval: float = 30.0  # the periodic status refresh (StatefulSet events refresh sooner)
    metrics_port: int = 8080  # 0: no metrics endpoint
    # Threads for the blocking Kubernetes client (KUBETROVE_API_THREADS). 8 saves glibc arenas (41
    # against 110 MiB at 500 CRs) but at 1000 CRs the 100-CR burst p99 was 137 s against 14 s with 32:
    # every CR's status timer queues its API calls ahead of the burst (docs/operations.md, Scale).
    api_threads: int = 32
    # Seconds between glibc heap trims (runtime/memory.py says why); 0: never trim.
    malloc_trim_interval: float = 30.0
    health_port: int = DEFAULT_HEALTH_PORT  # 0: no liveness endpoint
    # "namespace/pod" -> agent base URL. Only for tests whose pods are fake (kwok) while a real agent
    # runs on the host; in a real cluster agents are reached at their pod IP.
    agent_endpoints: Mapping[str, str] = field(default_factory=dict)
    # "namespace/pod" -> "host:port" of its engine as the other members reach it (the replication
    # source), for the same tests; in a real cluster it is the pod's name under the headless Service.
    engine_endpoints: Mapping[str, str] = field(default_factory=dict)
    # How long a restore verification's throwaway instance may take to become Ready and answer (a restore
    # of a big backup is slow); KUBETROVE_VERIFY_TIMEOUT_SECONDS.
    verify_timeout_seconds: float = 1800.0
    # The operator's pod (POD_NAME, from the downward API): the reportingInstance of its Events.
    pod_name: str | None = None

    def agent_url(self, namespace: str, pod: str, ip: str) -> str:
        """Where the agent of ``pod`` listens."""
        return self.agent_endpoints.get(f"{namespace}/{pod}") or base_url(ip)

    def engine_address(self, namespace: str, pod: str, default: str) -> str:
        """Where the other members reach ``pod``'s engine (``host:port``): ``default`` unless overridden."""
        return self.engine_endpoints.get(f"{namespace}/{pod}") or default

    @property
    def liveness_endpoint(self) -> str | None:
        """kopf's liveness URL (the chart's probe GETs ``/healthz`` on this port), or None when disabled."""
        # 0.0.0.0: the kubelet probes the pod IP, not loopback.
        return f"http://0.0.0.0:{self.health_port}/healthz" if self.health_port else None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        """Read KUBETROVE_AGENT_IMAGE and KUBETROVE_AGENT_IMAGE_<ENGINE>,
        KUBETROVE_NAMESPACES (comma-separated), KUBETROVE_LEASE_NAMESPACE (else POD_NAMESPACE, else
        "default"), KUBETROVE_LEASE_NAME, KUBETROVE_STATUS_INTERVAL, KUBETROVE_METRICS_PORT,
        KUBETROVE_HEALTH_PORT, KUBETROVE_API_THREADS, KUBETROVE_MALLOC_TRIM_INTERVAL,
        KUBETROVE_VERIFY_TIMEOUT_SECONDS, POD_NAME and KUBETROVE_AGENT_ENDPOINTS
        (JSON: {"namespace/pod": "http://host:port"})."""
        e = os.environ if env is None else env
        spaces = tuple(n.strip() for n in e.get("KUBETROVE_NAMESPACES", "").split(",") if n.strip())
        return cls(
            agent_image=e.get("KUBETROVE_AGENT_IMAGE") or DEFAULT_AGENT_IMAGE,
            agent_images=agent_images_from_env(e),
            namespaces=spaces,
            lease_namespace=e.get("KUBETROVE_LEASE_NAMESPACE", e.get("POD_NAMESPACE", "default")),
            lease_name=e.get("KUBETROVE_LEASE_NAME", "kubetrove-operator"),
            status_interval=float(e.get("KUBETROVE_STATUS_INTERVAL", "30")),
            metrics_port=int(e.get("KUBETROVE_METRICS_PORT", "8080")),
            api_threads=int(e.get("KUBETROVE_API_THREADS", "32")),
            malloc_trim_interval=float(e.get("KUBETROVE_MALLOC_TRIM_INTERVAL", "30")),
            health_port=int(e.get("KUBETROVE_HEALTH_PORT", str(DEFAULT_HEALTH_PORT))),
            agent_endpoints=json.loads(e.get("KUBETROVE_AGENT_ENDPOINTS", "{}")),
            # JSON {"namespace/pod": "host:port"} (tests with fake pods and engines on the host).
            engine_endpoints=json.loads(e.get("KUBETROVE_ENGINE_ENDPOINTS", "{}")),
            verify_timeout_seconds=float(e.get("KUBETROVE_VERIFY_TIMEOUT_SECONDS", "1800")),
            pod_name=e.get("POD_NAME") or None,
        )
