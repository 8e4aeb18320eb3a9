"""Start-up: kopf settings (with the reason for each), the dependencies, and the Lease.

The Lease is taken HERE, before kopf starts any watcher: kopf runs startup handlers to completion
before its root tasks (watch streams, handlers) begin (kopf/_core/reactor/running.py), so a second
operator instance blocks in this handler, handles nothing, and takes over when the first releases
the Lease or stops renewing it. kopf peering is not leader election (kopf docs/peering.rst): we run
standalone and rely on the Lease alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from kubetrove.handlers import admission, agent_tls
from kubetrove.k8s.client import KubeClient, load_config
from kubetrove.k8s.events import reporting_instance
from kubetrove.k8s.lease import LeaseLock
from kubetrove.members import Connect, http_client, tls_client
from kubetrove.metrics import OperatorMetrics
from kubetrove.reconcile.context import Deps
from kubetrove.runtime import profiling
from kubetrove.runtime.certs import KeyPair
from kubetrove.runtime.config import OperatorConfig
from kubetrove.runtime.health import standby_probe
from kubetrove.runtime.memory import trim_forever

PREFIX = "kubetrove.io"
log = logging.getLogger(__name__)


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf settings, each with its reason."""
    # A watch stream can stall silently (no error, no events) behind a proxy or after an API server
    # restart (kopf issue #585). The server closes the stream after server_timeout and the client gives
    # up after client_timeout; kopf then re-lists and re-watches, so a stalled stream heals in minutes.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # Only warnings and errors become Kubernetes Events (kopf would post one per handler run otherwise).
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "kubetrove-operator"
    # kopf's bookkeeping in annotations, not in .status: the status belongs to our API (its schema is
    # generated from the models and prunes unknown fields) and stays free of framework internals.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.peering.standalone = True


def _lost(metrics: OperatorMetrics) -> None:
    # Another instance may act from now on: stop at once (kopf handles SIGTERM gracefully).
    log.error("Lease lost: stopping the operator")
    metrics.leader.set(0)
    os.kill(os.getpid(), signal.SIGTERM)


async def operator_startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf, build the dependencies, and wait for the Lease before anything is handled.

    ``memo.config`` and ``memo.metrics`` come from the composition root (handlers/main.py).
    """
    configure(settings)
    config: OperatorConfig = memo.config
    metrics: OperatorMetrics = memo.metrics
    # The Kubernetes client is blocking and runs in the loop's default executor (asyncio.to_thread).
    # Python's default pool (min(32, cpus + 4) = 6 threads here) queues every API call of every CR
    # behind the periodic refreshes; benchmarks/scale.py measured burst p99 of minutes at 1000 CRs.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=config.api_threads))
    # One pooled connection per thread: urllib3's default pool (5 per core) is smaller than the thread
    # count, and a thread that finds it full opens a new TLS connection and drops it afterwards (the
    # log said "Connection pool is full, discarding connection" hundreds of times at 32 threads).
    api_config = load_config()
    api_config.connection_pool_maxsize = config.api_threads
    kube = KubeClient(api_config, metrics.observe_api)
    lock = LeaseLock(kube, config.lease_namespace, config.lease_name, config.identity, config.lease_seconds)
    # A standby serves its metrics too (kubetrove_operator_leader 0): the alert rules tell "no instance
    # runs" (no kubetrove_operator_info at all) apart from "instances run but none holds the Lease".
    metrics.leader.set(0)
    metrics.serve(config.metrics_port)
    async with standby_probe(config.liveness_endpoint):  # kopf's own probe starts after this handler
        await lock.acquire()
    metrics.leader.set(1)
    memo.lease = lock
    memo.lease_task = asyncio.create_task(
        lock.hold(functools.partial(_lost, metrics), renew_period=config.lease_seconds / 3)
    )
    agent_ca: KeyPair | None = None
    connect: Connect = http_client
    if config.agent_tls:
        agent_ca = await agent_tls.load_or_create_ca(kube, config.lease_namespace, config.agent_ca_secret)
        client_tls = agent_tls.ClientTLS(agent_ca)
        connect = tls_client(client_tls.context)
        memo.tls_task = asyncio.create_task(client_tls.renew_forever())
    memo.deps = Deps(
        kube=kube,
        agents=connect,
        agent_ca=agent_ca,
        agent_image=config.agent_image,
        agent_url=config.agent_url,
        agent_images=config.agent_images,
        image_registry=config.image_registry,
        network_policy_from=config.network_policy_from,
        metrics=metrics,
        reporting_instance=reporting_instance(config.pod_name),
        refresh_slots=asyncio.Semaphore(config.refresh_concurrency),
    )
    if config.admission_port:
        await admission.start(settings, memo, config, kube)
    if config.malloc_trim_interval > 0:
        memo.trim_task = asyncio.create_task(trim_forever(config.malloc_trim_interval))
    memo.tracing = profiling.start(config.tracemalloc_frames, asyncio.get_running_loop())
    profiling.watch_stacks(asyncio.get_running_loop())


async def operator_cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop renewing and release the Lease so a waiting instance takes over at once."""
    for name in ("lease_task", "trim_task", "tls_task"):
        task = getattr(memo, name, None)
        if task is not None:
            task.cancel()
    lock = getattr(memo, "lease", None)
    if lock is not None:
        await lock.release()
        memo.metrics.leader.set(0)
    if getattr(memo, "tracing", False):
        profiling.stop(asyncio.get_running_loop())
    kube = getattr(memo.deps, "kube", None) if hasattr(memo, "deps") else None
    if kube is not None:
        kube.close()


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """Start-up and clean-up of the operator, and logging in to the API server."""
    # kopf's default registry adds this login handler by itself (the official client's configuration:
    # KUBECONFIG or the in-cluster account); a registry of our own must name it.
    kopf.on.login(registry=into, errors=kopf.ErrorsMode.IGNORED)(kopf.login_via_client)
    kopf.on.startup(registry=into)(operator_startup)
    kopf.on.cleanup(registry=into)(operator_cleanup)
