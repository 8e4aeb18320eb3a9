"""What every phase receives: the parsed resource, its dependencies, and what earlier phases found."""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubetrove.agent.protocol import base_url as default_agent_url
from kubetrove.api.common import Engine
from kubetrove.api.resources import CLUSTER, Parsed
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.api.status import ResourceStatus
from kubetrove.datastores.base import Datastore
from kubetrove.k8s.port import Kube, Obj
from kubetrove.render import Manifests, RenderInputs
from kubetrove.render.names import ChildNames

Logger = logging.Logger | logging.LoggerAdapter[Any]
T = TypeVar("T")


def need(value: T | None, what: str) -> T:
    """``value``, or a clear error when an earlier phase did not provide it (a phase-order bug)."""
    if value is None:
        raise RuntimeError(f"phase order: {what} is not set yet")
    return value


def utcnow() -> datetime.datetime:
    """The current time in UTC (the default clock)."""
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Deps:
    """The operator's dependencies, injected so unit tests can fake each one."""

    kube: Kube
    agent_image: str  # the fallback: engines missing from ``agent_images`` use it
    clock: Callable[[], datetime.datetime] = utcnow
    # Generates passwords and tokens: 32 random bytes, URL-safe base64 (no quotes, no shell specials).
    token: Callable[[], str] = lambda: secrets.token_urlsafe(32)
    # Builds an agent client for (base_url, token); None: dynamic parameters cannot be pushed.
    agents: Callable[[str, str], Any] | None = None
    # The base URL of a member's agent from (namespace, pod name, pod IP).
    agent_url: Callable[[str, str, str], str] = field(default=lambda ns, pod, ip: default_agent_url(ip))
    # Engine value -> the agent image built for that engine (KUBETROVE_AGENT_IMAGE_<ENGINE>).
    agent_images: Mapping[Engine, str] = field(default_factory=dict)
    image_registry: str = ""  # the registry of the catalog's engine images (KUBETROVE_IMAGE_REGISTRY)

    def agent_image_for(self, engine: Engine) -> str:
        """The agent image for ``engine``: its own when configured, else the fallback."""
        return self.agent_images.get(engine) or self.agent_image


@dataclass
class Context:
    """Per-reconcile state: phases read what earlier phases stored here."""

    parsed: Parsed[InstanceSpec]
    deps: Deps
    logger: Logger
    store: Datastore | None = None
    previous: InstanceSpec | None = None  # the spec last applied (from the StatefulSet annotation)
    live_statefulset: Obj | None = None
    inputs: RenderInputs | None = None
    manifests: Manifests | None = None
    previous_status: ResourceStatus | None = None  # as stored on the custom resource
    status: ResourceStatus | None = None  # as computed by the Status phase
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> InstanceSpec:
        return self.parsed.spec

    @property
    def namespace(self) -> str:
        return self.parsed.ref.namespace

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.parsed.ref.name)

    @property
    def replicas(self) -> int:
        """Desired members: ``spec.replicas`` for a cluster, 1 for an instance."""
        return self.spec.replicas if isinstance(self.spec, ClusterSpec) else 1

    @property
    def is_cluster(self) -> bool:
        return self.parsed.ref.kind is CLUSTER
