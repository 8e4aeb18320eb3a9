"""Handlers of DatabaseInstance and DatabaseCluster: parse, call reconcile, map errors; nothing else.

``register`` hands them to a kopf registry with the process's configuration (handlers/main.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from kubetrove.api.common import GROUP, VERSION
from kubetrove.api.resources import CLUSTER, INSTANCE, Kind, Parsed, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.handlers.errors import kopf_errors
from kubetrove.reconcile import run
from kubetrove.reconcile.errors import InvalidSpec
from kubetrove.runtime.config import OperatorConfig
from kubetrove.runtime.jitter import jitter


def parse(kind: Kind, body: Any) -> Parsed[InstanceSpec]:
    """The body as a typed object (a ClusterSpec for clusters)."""
    return parse_body(kind, body, kind.spec)  # type: ignore[arg-type]


async def _reconcile(kind: Kind, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger) -> None:
    with kopf_errors(), memo.deps.metrics.reconcile_timer(kind.kind, (InvalidSpec,)):
        await run.reconcile(parse(kind, body), body.get("status"), memo.deps, logger)


async def databaseinstance_spec(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Reconcile a DatabaseInstance with its spec."""
    await _reconcile(INSTANCE, body, memo, logger)


async def databasecluster_spec(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Reconcile a DatabaseCluster with its spec."""
    await _reconcile(CLUSTER, body, memo, logger)


def refresh_interval(kind: Kind, config: OperatorConfig) -> float:
    """The status timer's interval: instances have their own (their StatefulSet events refresh them)."""
    return config.instance_status_interval if kind is INSTANCE else config.status_interval


async def database_refresh(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    stopped: kopf.DaemonStopped | None = None,
    **_: Any,
) -> None:
    """Level-triggered backstop: refresh status (and drive OnDelete rolls) from observed state.

    Each run first waits a random part of a fifth of the interval (runtime/jitter.py), so the timers of
    resources resumed together do not fire together; a deletion or the operator's stop ends the wait
    (kopf hands timers ``stopped`` as it does daemons, though its TimerFn type does not name it)."""
    kind = INSTANCE if body["kind"] == INSTANCE.kind else CLUSTER
    if await _jittered(refresh_interval(kind, memo.config), stopped):
        with kopf_errors():
            async with memo.deps.refresh_slots:
                await run.refresh(parse(kind, body), body.get("status"), memo.deps, logger)


async def _jittered(interval: float, stopped: kopf.DaemonStopped | None) -> bool:
    """Wait a random part of a fifth of ``interval``; False when a stop ended the wait."""
    delay = jitter(interval)
    if stopped is None:
        await asyncio.sleep(delay)
        return True
    await stopped.wait(delay)
    return not stopped


def autogrows(spec: kopf.Spec, **_: Any) -> bool:
    """The autogrow timer's filter: spec.storage.autogrow is set."""
    return bool((spec.get("storage") or {}).get("autogrow"))


async def databaseinstance_autogrow(
    body: kopf.Body,
    memo: kopf.Memo,
    logger: kopf.Logger,
    stopped: kopf.DaemonStopped | None = None,
    **_: Any,
) -> None:
    """A DatabaseInstance with spec.storage.autogrow: its member's volume (and autogrow) more often than
    its status timer, after the same jitter."""
    if await _jittered(memo.config.autogrow_interval, stopped):
        with kopf_errors():
            await run.observe_volume(parse(INSTANCE, body), body.get("status"), memo.deps, logger)


async def database_delete(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Apply the volumes deletion policy; every other child goes by its owner reference."""
    kind = INSTANCE if body["kind"] == INSTANCE.kind else CLUSTER
    with kopf_errors():
        await run.delete(parse(kind, body), memo.deps, logger)


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """The handlers above, for both kinds; the status refresh every ``refresh_interval``; the autogrow
    timer of instances that set spec.storage.autogrow (a cluster's loop observes its volumes)."""
    for kind, spec_handler in ((INSTANCE, databaseinstance_spec), (CLUSTER, databasecluster_spec)):
        kopf.on.resume(GROUP, VERSION, kind.plural, registry=into)(spec_handler)
        kopf.on.create(GROUP, VERSION, kind.plural, registry=into)(spec_handler)
        kopf.on.update(GROUP, VERSION, kind.plural, field="spec", registry=into)(spec_handler)
    for kind in (INSTANCE, CLUSTER):
        interval = refresh_interval(kind, config)
        kopf.timer(GROUP, VERSION, kind.plural, interval=interval, initial_delay=interval, registry=into)(
            database_refresh
        )
        kopf.on.delete(GROUP, VERSION, kind.plural, registry=into)(database_delete)
    every = config.autogrow_interval
    kopf.timer(
        GROUP, VERSION, INSTANCE.plural, interval=every, initial_delay=every, when=autogrows, registry=into
    )(databaseinstance_autogrow)
