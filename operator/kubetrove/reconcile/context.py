"""What every phase receives: the parsed resource, its dependencies, and what earlier phases found."""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubetrove.api.common import Engine
from kubetrove.api.resources import CLUSTER, Parsed
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.api.status import ResourceStatus
from kubetrove.datastores.base import Datastore, VersionInfo, qualified_image
from kubetrove.k8s.events import reporting_instance
from kubetrove.k8s.port import Kube, Obj
from kubetrove.members import AgentUrl, Connect, Members, default_agent_url, http_client
from kubetrove.metrics import OperatorMetrics
from kubetrove.render import Manifests, RenderInputs
from kubetrove.render.names import ChildNames
from kubetrove.runtime.certs import KeyPair

Logger = logging.Logger | logging.LoggerAdapter[Any]
T = TypeVar("T")


def need(value: T | None, what: str) -> T:
    """``value``, or a clear error when an earlier phase did not provide it (a phase-order bug)."""
    if value is None:
        raise RuntimeError(f"phase order: {what} is not set yet")
    return value


async def together(*calls: Awaitable[T]) -> list[T]:
    """Run ``calls`` at once and wait for every one; then raise the first failure, as it was raised.

    Why: each API call of a reconcile waits its turn behind every other resource's calls (a burst of
    creations, benchmarks/scale.py), so independent calls made one after the other wait that turn each.
    Every call is waited for, failed or not: none is left running unseen."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def utcnow() -> datetime.datetime:
    """The current time in UTC (the default clock)."""
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class Deps:
    """The operator's dependencies, injected so unit tests can fake each one."""

    kube: Kube
    agent_image: str  # the fallback: engines missing from ``agent_images`` use it
    clock: Callable[[], datetime.datetime] = utcnow
    # Generates passwords and tokens: 24 random bytes (192 bits), URL-safe base64 (no quotes, no shell
    # specials): 32 characters, the longest password MySQL's CHANGE REPLICATION SOURCE TO accepts
    # (SOURCE_PASSWORD; replicas log in to the source as root with the generated root password).
    # https://dev.mysql.com/doc/refman/8.4/en/change-replication-source-to.html
    token: Callable[[], str] = lambda: secrets.token_urlsafe(24)
    # Builds one agent's client (the unit tests' fake agents in tests); used through ``members`` only.
    agents: Connect = http_client
    # The base URL of a member's agent from (namespace, pod name, pod IP or DNS name).
    agent_url: AgentUrl = default_agent_url
    # Engine value -> the agent image built for that engine (KUBETROVE_AGENT_IMAGE_<ENGINE>).
    agent_images: Mapping[Engine, str] = field(default_factory=dict)
    image_registry: str = ""  # the registry of the catalog's engine images (KUBETROVE_IMAGE_REGISTRY)
    # The operator's namespace when a NetworkPolicy is rendered per database (KUBETROVE_NETWORK_POLICY).
    network_policy_from: str | None = None
    # The installation's agent CA (handlers/agent_tls.py): every database's agent gets a server certificate
    # it signs, and serves HTTPS to the operator's client certificate only. None: agents serve plain HTTP.
    agent_ca: KeyPair | None = None
    # The process's metrics, registered once by the composition root (a fresh registry in unit tests).
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    # The reportingInstance of the Events the operator posts (its pod name).
    reporting_instance: str = field(default_factory=reporting_instance)
    # Slots for status refreshes at once (KUBETROVE_REFRESH_CONCURRENCY, runtime/config.py says why).
    refresh_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))

    @property
    def members(self) -> Members:
        """The gateway to the members' agents (kubetrove/members.py)."""
        return Members(self.kube, self.agents, self.agent_url)

    def agent_image_for(self, engine: Engine, info: VersionInfo | None = None) -> str:
        """The agent image for ``engine`` at catalog version ``info``: the engine's own when configured
        (KUBETROVE_AGENT_IMAGE_<ENGINE>), else the version's (``VersionInfo.agent_image`` in the image
        registry), else the fallback."""
        if engine in self.agent_images:
            return self.agent_images[engine]
        if info is not None and info.agent_image:
            return qualified_image(self.image_registry, info.agent_image)
        return self.agent_image


@dataclass
class Context:
    """Per-reconcile state: phases read what earlier phases stored here."""

    parsed: Parsed[InstanceSpec]
    deps: Deps
    logger: Logger
    store: Datastore | None = None
    previous: InstanceSpec | None = None  # the spec last applied (from the StatefulSet annotation)
    live_statefulset: Obj | None = None
    # What the Apply phase just applied, by (kind, name), as the API server answered: the Status phase
    # reads the Services from here instead of asking again.
    applied: dict[tuple[str, str], Obj] = field(default_factory=dict)
    # The members' pods, listed once per pass by ``member_pods`` (Volume and Status both read them).
    pods: list[Obj] | None = None
    inputs: RenderInputs | None = None
    manifests: Manifests | None = None
    previous_status: ResourceStatus | None = None  # as stored on the custom resource
    status: ResourceStatus | None = None  # as computed by the Status phase (the runner writes it)
    # spec.tls: where the engine's certificate comes from and when it expires (the Credentials phase).
    tls_source: str = ""
    tls_expiry: datetime.datetime | None = None
    # A ring's scale-down refused this pass (phases/ring.py): the nodes it keeps. Apply leaves the
    # StatefulSet at this size and the Users phase fits the ring's keyspaces to it, not to spec.replicas.
    kept_nodes: int | None = None
    # A status refresh writes only over the resourceVersion it computed from (set by ``run.refresh``; moved
    # on by its own writes): a refresh that began before a reconcile wrote would otherwise put the older
    # conditions back (the list is replaced as a whole), e.g. drop the reconcile's ScaleDown; on a conflict
    # it is rebased over the stored status (phases/report.py). None: the write is unconditional (the
    # reconcile's, which computes from the spec it was handed).
    write_precondition: str | None = None

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
    def running_members(self) -> int:
        """The members this pass keeps: ``replicas``, unless a ring's scale-down was refused."""
        return self.replicas if self.kept_nodes is None else self.kept_nodes

    @property
    def is_cluster(self) -> bool:
        return self.parsed.ref.kind is CLUSTER


async def member_pods(ctx: Context) -> list[Obj]:
    """The members' pods: listed by the first phase of a pass that asks, then the same list (a refresh's
    Volume and Status phases, a second apart, made two LIST calls)."""
    if ctx.pods is None:
        ctx.pods = await ctx.deps.members.pods(ctx.parsed.ref, ctx.spec.datastore.type)
    return ctx.pods
