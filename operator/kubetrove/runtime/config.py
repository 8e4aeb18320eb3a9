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
from kubetrove.datastores.base import qualified_image
from kubetrove.runtime.profiling import frames_from_env

# The registry holding every image the catalog names (and the agent): the one `make images` pushes to
# (hack/images, served on loopback by hack/realnode/registry.py). KUBETROVE_IMAGE_REGISTRY (the chart's
# `imageRegistry`) points the operator at yours; "" uses the catalog's names as they are.
DEFAULT_IMAGE_REGISTRY = "127.0.0.1:5000/kubetrove"
DEFAULT_AGENT_IMAGE = "agent:0.1.0"  # in the image registry, like the catalog's engine images
DEFAULT_HEALTH_PORT = 8081
# KUBETROVE_AGENT_IMAGE_<ENGINE> (the Helm chart sets one per engine): the suffix is the Engine value in
# upper case, so adding an engine needs no change here.
AGENT_IMAGE_PREFIX = "KUBETROVE_AGENT_IMAGE_"
DEFAULT_INSTANCE_STATUS_INTERVAL = 300.0
# The autogrow timer of a DatabaseInstance with spec.storage.autogrow (docs/operations.md, "Autogrow").
DEFAULT_AUTOGROW_INTERVAL = 60.0


def _interval(env: Mapping[str, str], own: str, default: float) -> float:
    """``own`` in seconds, else KUBETROVE_STATUS_INTERVAL when only that is set, else ``default``."""
    for name in (own, "KUBETROVE_STATUS_INTERVAL"):
        if name in env:
            return float(env[name])
    return default


def instance_status_interval(env: Mapping[str, str]) -> float:
    """KUBETROVE_INSTANCE_STATUS_INTERVAL, else KUBETROVE_STATUS_INTERVAL when only that is set, else
    300 s."""
    return _interval(env, "KUBETROVE_INSTANCE_STATUS_INTERVAL", DEFAULT_INSTANCE_STATUS_INTERVAL)


def autogrow_interval(env: Mapping[str, str]) -> float:
    """KUBETROVE_AUTOGROW_INTERVAL, else KUBETROVE_STATUS_INTERVAL when only that is set, else 60 s."""
    return _interval(env, "KUBETROVE_AUTOGROW_INTERVAL", DEFAULT_AUTOGROW_INTERVAL)


def agent_images_from_env(env: Mapping[str, str]) -> dict[Engine, str]:
    """The per-engine agent images set in ``env`` (engines without one use the fallback image)."""
    return {
        e: env[AGENT_IMAGE_PREFIX + e.value.upper()]
        for e in Engine
        if env.get(AGENT_IMAGE_PREFIX + e.value.upper())
    }


def image_registry(value: str) -> str:
    """KUBETROVE_IMAGE_REGISTRY, checked: ``host[:port][/path]`` without a tag, digest or scheme."""
    registry = value.strip().rstrip("/")
    path = registry.split("/", 1)[1] if "/" in registry else ""  # a ":" here would be a tag
    if "://" in registry or "@" in registry or ":" in path or " " in registry:
        raise ValueError(
            f"KUBETROVE_IMAGE_REGISTRY={value!r}: expected host[:port][/path] (no scheme, tag or digest),"
            " e.g. registry.example.com/kubetrove"
        )
    return registry


def _flag(value: str, name: str) -> bool:
    """ "true"/"false" (any case): a typo is an error, not a silent false."""
    if value.strip().lower() not in ("true", "false"):
        raise ValueError(f"{name}={value!r}: expected true or false")
    return value.strip().lower() == "true"


@dataclass(frozen=True)
class OperatorConfig:
    """Settings of one operator process."""

    # The fallback for engines without an image of their own (a full reference).
    agent_image: str = qualified_image(DEFAULT_IMAGE_REGISTRY, DEFAULT_AGENT_IMAGE)
    agent_images: Mapping[Engine, str] = field(default_factory=dict)
    image_registry: str = DEFAULT_IMAGE_REGISTRY  # prefixes the catalog's ``name:tag`` engine images
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    lease_namespace: str = "default"
    lease_name: str = "kubetrove-operator"
    lease_seconds: int = 15
    # Unique per process, so a restarted operator is a new holder (client-go uses hostname + uuid).
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    status_interval: float = 30.0  # the periodic status refresh (StatefulSet events refresh sooner)
    # The DatabaseInstance status timer (KUBETROVE_INSTANCE_STATUS_INTERVAL): at N=1000 a 30 s timer is
    # 33 refreshes a second (docs/operations.md, Scale), and an instance's StatefulSet events refresh
    # its status at once, so the timer is only the backstop. When only KUBETROVE_STATUS_INTERVAL is
    # set it applies here too (the e2e tier sets 5 s and relies on it).
    instance_status_interval: float = DEFAULT_INSTANCE_STATUS_INTERVAL
    # The autogrow timer of a DatabaseInstance with spec.storage.autogrow (KUBETROVE_AUTOGROW_INTERVAL):
    # its status timer is too slow for a filling disk; only instances with autogrow have this timer, so
    # idle instances without it cost nothing more. KUBETROVE_STATUS_INTERVAL alone applies here too.
    autogrow_interval: float = DEFAULT_AUTOGROW_INTERVAL
    metrics_port: int = 8080  # 0: no metrics endpoint
    # Threads for the blocking Kubernetes client (KUBETROVE_API_THREADS). 8 saves glibc arenas (41
    # against 110 MiB at 500 CRs) but at 1000 CRs the 100-CR burst p99 was 137 s against 14 s with 32:
    # every CR's status timer queues its API calls ahead of the burst (docs/operations.md, Scale).
    api_threads: int = 32
    # Status refreshes (timers and StatefulSet events) running at once (KUBETROVE_REFRESH_CONCURRENCY): the
    # rest wait their turn, so refreshes never hold every API thread while resources are created (a
    # creation's calls queue behind them otherwise); kopf merges the StatefulSet events that arrive while
    # one waits.
    refresh_concurrency: int = 16
    # Seconds between glibc heap trims (runtime/memory.py says why); 0: never trim.
    malloc_trim_interval: float = 30.0
    # KUBETROVE_TRACEMALLOC: frames per traced allocation, SIGUSR1 logs the top sites (runtime/profiling.py);
    # 0: off.
    tracemalloc_frames: int = 0
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
    # DatabasePolicy admission (docs/policy.md). Port of the HTTPS webhook server; 0: no admission.
    admission_port: int = 0
    # Host names / IPs in the serving certificate (the chart: the webhook Service's DNS names).
    admission_hosts: tuple[str, ...] = ()
    # The webhook configurations whose caBundle the operator sets at start (the chart creates them).
    validating_webhook: str = ""
    mutating_webhook: str = ""
    # KUBETROVE_AGENT_TLS: agents serve HTTPS with a certificate of the installation's CA, and their API
    # only to the operator's client certificate (docs/security.md). The CA lives in the Secret
    # ``agent_ca_secret`` of the operator's namespace (``lease_namespace``); the operator creates it once.
    agent_tls: bool = True
    agent_ca_secret: str = "kubetrove-agent-ca"  # noqa: S105 (a Secret's name)
    # Refuse databases in namespaces that no DatabasePolicy selects (the chart's policy.required).
    policy_required: bool = False
    # KUBETROVE_NETWORK_POLICY: render a NetworkPolicy per database (render/networkpolicy.py), letting the
    # agent port be reached only from the operator's namespace (``lease_namespace``, where the chart runs
    # the operator) and the engine ports only from the database's own namespace.
    network_policy: bool = False

    @property
    def network_policy_from(self) -> str | None:
        """The namespace agents accept traffic from when NetworkPolicies are on, else None."""
        return self.lease_namespace if self.network_policy else None

    def agent_url(self, namespace: str, pod: str, host: str, tls_name: str | None = None) -> str:
        """Where the agent of ``pod`` listens (``KUBETROVE_AGENT_ENDPOINTS`` overrides it as given)."""
        return self.agent_endpoints.get(f"{namespace}/{pod}") or base_url(host, tls_name)

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
        """Read KUBETROVE_IMAGE_REGISTRY, KUBETROVE_AGENT_IMAGE and KUBETROVE_AGENT_IMAGE_<ENGINE>,
        KUBETROVE_NAMESPACES (comma-separated), KUBETROVE_LEASE_NAMESPACE (else POD_NAMESPACE, else
        "default"), KUBETROVE_LEASE_NAME, KUBETROVE_STATUS_INTERVAL, KUBETROVE_INSTANCE_STATUS_INTERVAL
        and KUBETROVE_AUTOGROW_INTERVAL (each else KUBETROVE_STATUS_INTERVAL), KUBETROVE_METRICS_PORT,
        KUBETROVE_HEALTH_PORT, KUBETROVE_API_THREADS, KUBETROVE_MALLOC_TRIM_INTERVAL, KUBETROVE_TRACEMALLOC,
        KUBETROVE_VERIFY_TIMEOUT_SECONDS, KUBETROVE_NETWORK_POLICY, KUBETROVE_AGENT_TLS ("true" or
        "false"), KUBETROVE_AGENT_CA_SECRET, POD_NAME, KUBETROVE_AGENT_ENDPOINTS (JSON:
        {"namespace/pod": "http://host:port"}), and for admission KUBETROVE_ADMISSION_PORT,
        KUBETROVE_ADMISSION_HOSTS (comma-separated), KUBETROVE_VALIDATING_WEBHOOK,
        KUBETROVE_MUTATING_WEBHOOK and KUBETROVE_POLICY_REQUIRED ("true" or "false")."""
        e = os.environ if env is None else env
        spaces = tuple(n.strip() for n in e.get("KUBETROVE_NAMESPACES", "").split(",") if n.strip())
        registry = image_registry(e.get("KUBETROVE_IMAGE_REGISTRY", DEFAULT_IMAGE_REGISTRY))
        return cls(
            agent_image=e.get("KUBETROVE_AGENT_IMAGE") or qualified_image(registry, DEFAULT_AGENT_IMAGE),
            image_registry=registry,
            agent_images=agent_images_from_env(e),
            namespaces=spaces,
            lease_namespace=e.get("KUBETROVE_LEASE_NAMESPACE", e.get("POD_NAMESPACE", "default")),
            lease_name=e.get("KUBETROVE_LEASE_NAME", "kubetrove-operator"),
            status_interval=float(e.get("KUBETROVE_STATUS_INTERVAL", "30")),
            instance_status_interval=instance_status_interval(e),
            autogrow_interval=autogrow_interval(e),
            metrics_port=int(e.get("KUBETROVE_METRICS_PORT", "8080")),
            api_threads=int(e.get("KUBETROVE_API_THREADS", "32")),
            refresh_concurrency=max(1, int(e.get("KUBETROVE_REFRESH_CONCURRENCY", "16"))),
            malloc_trim_interval=float(e.get("KUBETROVE_MALLOC_TRIM_INTERVAL", "30")),
            tracemalloc_frames=frames_from_env(e.get("KUBETROVE_TRACEMALLOC")),
            health_port=int(e.get("KUBETROVE_HEALTH_PORT", str(DEFAULT_HEALTH_PORT))),
            agent_endpoints=json.loads(e.get("KUBETROVE_AGENT_ENDPOINTS", "{}")),
            # JSON {"namespace/pod": "host:port"} (tests with fake pods and engines on the host).
            engine_endpoints=json.loads(e.get("KUBETROVE_ENGINE_ENDPOINTS", "{}")),
            verify_timeout_seconds=float(e.get("KUBETROVE_VERIFY_TIMEOUT_SECONDS", "1800")),
            network_policy=_flag(e.get("KUBETROVE_NETWORK_POLICY", "false"), "KUBETROVE_NETWORK_POLICY"),
            agent_tls=_flag(e.get("KUBETROVE_AGENT_TLS", "true"), "KUBETROVE_AGENT_TLS"),
            agent_ca_secret=e.get("KUBETROVE_AGENT_CA_SECRET", "kubetrove-agent-ca"),
            pod_name=e.get("POD_NAME") or None,
            admission_port=int(e.get("KUBETROVE_ADMISSION_PORT", "0")),
            admission_hosts=tuple(
                h.strip() for h in e.get("KUBETROVE_ADMISSION_HOSTS", "").split(",") if h.strip()
            ),
            validating_webhook=e.get("KUBETROVE_VALIDATING_WEBHOOK", ""),
            mutating_webhook=e.get("KUBETROVE_MUTATING_WEBHOOK", ""),
            policy_required=_flag(e.get("KUBETROVE_POLICY_REQUIRED", "false"), "KUBETROVE_POLICY_REQUIRED"),
        )
