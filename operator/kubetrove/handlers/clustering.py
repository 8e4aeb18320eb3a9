"""The clustering daemon: one per DatabaseCluster of a known engine. kopf glue only.

- Engines whose ``Datastore.ha_mode`` is OPERATOR_PRIMARY (MySQL, MariaDB, PostgreSQL) get the
  failover loop; ENGINE_ELECTED ones (MongoDB) the membership loop (``runner.make_loop``): the set
  elects, kubetrove initiates/reconfigures it and reports its primary; NO_PRIMARY rings (Cassandra)
  an observe-only loop that reports ``status.members`` and the Replication condition.
- The Lease: ``operator_startup`` (settings.py) blocks until this instance holds it, and kopf starts no
  daemon before every startup handler has finished, so a standby never runs a loop. On losing the
  Lease the process stops itself (SIGTERM): kopf sets ``stopped`` on every daemon and cancels those
  still running after ``cancellation_timeout``; a half-done action is finished by the next holder (I1).
- The work is in ``kubetrove.clustering.runner``; this function only maps kopf's world onto it.
"""

from __future__ import annotations

from typing import Any

import kopf

from kubetrove.api.common import GROUP, VERSION
from kubetrove.api.resources import CLUSTER, parse_body
from kubetrove.api.specs import ClusterSpec
from kubetrove.clustering import runner
from kubetrove.datastores import registry
from kubetrove.datastores.base import HAMode
from kubetrove.runtime.config import OperatorConfig

# On stop, kopf sets ``stopped`` and waits CANCELLATION_BACKOFF for a graceful exit (the runner notices
# within one interval and returns between cycles, never mid-action), then cancels and waits
# CANCELLATION_TIMEOUT more. Without a backoff kopf cancels at once. A cancelled cycle is still safe:
# every step is idempotent and the next holder finishes it (I1).
CANCELLATION_BACKOFF = 8.0
CANCELLATION_TIMEOUT = 10.0


LOOPED = (HAMode.OPERATOR_PRIMARY, HAMode.ENGINE_ELECTED, HAMode.NO_PRIMARY)


def has_loop(body: kopf.Body, **_: Any) -> bool:
    """Engines with a loop: every HA mode has one (an unknown engine: no daemon)."""
    engine = (body.get("spec") or {}).get("datastore", {}).get("type")
    try:
        return registry.get(engine).ha_mode in LOOPED
    except ValueError:
        return False


async def databasecluster_clustering(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """observe -> decide -> act for this cluster until the daemon is stopped."""
    parsed = parse_body(CLUSTER, body, ClusterSpec)
    store = registry.get(parsed.spec.datastore.type)
    ref = parsed.ref
    labels = (ref.namespace, ref.name, store.engine.value)
    metrics = memo.deps.metrics
    counters = {"FailoverSucceeded": metrics.failovers, "SwitchoverSucceeded": metrics.switchovers}

    def count(reason: str) -> None:
        if reason in counters:
            counters[reason].labels(*labels).inc()

    wiring = runner.Wiring(
        kube=memo.deps.kube,
        ref=ref,
        store=store,
        version=parsed.spec.datastore.version,
        agent_url=memo.deps.agent_url,
        connect=memo.deps.agents,
        engine_address=memo.config.engine_address,
        metrics=metrics,
        reporting_instance=memo.deps.reporting_instance,
    )
    await runner.run(wiring, stopped.is_set, on_event=count)


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """One clustering daemon per DatabaseCluster of an engine with a loop."""
    kopf.daemon(
        GROUP,
        VERSION,
        CLUSTER.plural,
        when=has_loop,
        cancellation_backoff=CANCELLATION_BACKOFF,
        cancellation_timeout=CANCELLATION_TIMEOUT,
        registry=into,
    )(databasecluster_clustering)
