"""Wiring of one DatabaseCluster's loop: ``KubeClusterRecord`` + ``AgentOps`` + ``Loop``, until stopped.

The loop runs in epochs. An epoch builds ``AgentOps`` for the members' current addresses (pod IPs
change when a pod is recreated; ``AgentOps`` keeps its endpoints for its lifetime) and the current
Secrets (the agent token, the replication password: both may be rotated), then runs ``Loop.run``
until the addresses change or the daemon is stopped. The ``Loop`` object, and with it the
``DownClock`` (how long each member has been down), survives epochs: a new epoch never resets
failure detection.

Replication account: the engine's administrative account (``EngineContainer.admin_user`` and its
password in the credentials Secret). A dedicated REPLICATION-only account would be narrower; the
engine images would have to create it first (not done yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from kubetrove.api.resources import ObjectRef
from kubetrove.clustering.agent_ops import AgentOps, Endpoint, Replication
from kubetrove.clustering.kube_record import KubeClusterRecord
from kubetrove.clustering.membership_process import MembershipLoop
from kubetrove.clustering.process import Loop
from kubetrove.clustering.ring_process import RingLoop
from kubetrove.datastores.base import Datastore, HAMode
from kubetrove.k8s.kinds import SECRET
from kubetrove.k8s.port import Kube
from kubetrove.k8s.secrets import decode_secret
from kubetrove.members import AgentUrl, Connect, agent_tls_name, http_client
from kubetrove.metrics import OperatorMetrics
from kubetrove.render.names import AGENT_TOKEN_KEY, ChildNames

log = logging.getLogger(__name__)

Endpoints = dict[str, Endpoint]


@dataclass(frozen=True)
class Wiring:
    """What one cluster's loop needs from the operator."""

    kube: Kube
    ref: ObjectRef
    store: Datastore
    version: str  # spec.datastore.version: picks the engine container (admin account)
    agent_url: AgentUrl  # (namespace, pod, pod IP or DNS name, TLS name) -> agent base URL
    engine_address: Callable[[str, str, str], str]  # (namespace, pod, default host:port) -> host:port
    connect: Connect = http_client  # builds an agent's client (TLS when the operator has agent TLS on)
    interval: float = 1.0
    wait_timeout: float = 30.0
    metrics: OperatorMetrics | None = None  # the process's (members per role, lag per member)
    reporting_instance: str | None = None  # the reportingInstance of the loop's Events


def endpoints(w: Wiring, record: KubeClusterRecord) -> Endpoints:
    """Every member's agent URL (its pod IP; its DNS name before it has one) and engine address."""
    names = ChildNames(w.ref.name)
    out = {}
    for pod in record.pods:
        dns = names.member_host(pod, w.ref.namespace)
        obj = record.pods.get(pod)
        tls_name = agent_tls_name(obj, w.ref.namespace) if obj is not None else None
        url = w.agent_url(w.ref.namespace, pod, record.pod_ip(pod) or dns, tls_name)
        host, _, port = w.engine_address(w.ref.namespace, pod, f"{dns}:{w.store.ports[0].number}").rpartition(
            ":"
        )
        out[pod] = Endpoint(url, host, int(port))
    return out


async def _secret(kube: Kube, namespace: str, name: str) -> dict[str, str]:
    return decode_secret(await kube.get(SECRET, namespace, name))


async def credentials(w: Wiring) -> tuple[str, Replication] | None:
    """(agent token, replication account), or None while the Secrets are not written yet."""
    names = ChildNames(w.ref.name)
    token = (await _secret(w.kube, w.ref.namespace, names.agent_token_secret)).get(AGENT_TOKEN_KEY)
    container = w.store.container(w.version)
    password = ""
    if container.admin_password_key:  # an engine whose agent logs in without one (Cassandra) needs none
        password = (await _secret(w.kube, w.ref.namespace, names.credentials_secret)).get(
            container.admin_password_key, ""
        )
        if not password:
            return None
    if not token:
        return None
    promote, demote = w.store.role_parameters(True), w.store.role_parameters(False)
    return token, Replication(container.admin_user, password, promote or None, demote or None)


def make_loop(w: Wiring, ops: AgentOps, record: KubeClusterRecord) -> Loop | MembershipLoop | RingLoop:
    """The loop for the engine's HA mode: an engine-elected set only gets its membership managed, a
    ring of equals is only observed and reported."""
    if w.store.ha_mode is HAMode.ENGINE_ELECTED:
        return MembershipLoop(ops, record, w.interval)
    if w.store.ha_mode is HAMode.NO_PRIMARY:
        return RingLoop(ops, record, w.interval)
    return Loop(ops, record, w.store.compare_positions, w.interval, w.wait_timeout)


async def _watch(
    w: Wiring, record: KubeClusterRecord, seen: Endpoints, stopped: Callable[[], bool], epoch: asyncio.Event
) -> None:
    """End the epoch when the daemon stops or a member's address changed (record.load refreshes pods)."""
    while not (stopped() or endpoints(w, record) != seen):  # noqa: ASYNC110 (kopf's flag; polled)
        await asyncio.sleep(w.interval)
    epoch.set()


async def run(w: Wiring, stopped: Callable[[], bool], on_event: Callable[[str], None] | None = None) -> None:
    """Run the cluster's loop until ``stopped()``; transient errors end one attempt, never the run."""
    record = KubeClusterRecord(
        w.kube, w.ref, w.store, on_event=on_event, metrics=w.metrics, reporting_instance=w.reporting_instance
    )
    record.gauges.start()
    try:
        await _epochs(w, record, stopped)
    finally:
        record.gauges.forget()  # the cluster is gone or the operator stops: no stale series


async def _epochs(w: Wiring, record: KubeClusterRecord, stopped: Callable[[], bool]) -> None:
    """One epoch after the other (the module docstring), the loop kept across them."""
    loop: Loop | MembershipLoop | RingLoop | None = None
    while not stopped():
        try:
            await record.load()
            creds = await credentials(w)
        except Exception:
            log.exception("clustering %s/%s: cannot read the cluster", w.ref.namespace, w.ref.name)
            creds = None
        if creds is None:
            await asyncio.sleep(w.interval)  # Secrets not written yet (or the API hiccupped)
            continue
        seen = endpoints(w, record)
        ops = AgentOps(seen.__getitem__, creds[0], creds[1], pods=list(seen), connect=w.connect)
        if loop is None:
            loop = make_loop(w, ops, record)
        loop.ops = ops
        epoch = asyncio.Event()
        watcher = asyncio.create_task(_watch(w, record, seen, stopped, epoch))
        try:
            await loop.run(epoch)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await ops.close()
