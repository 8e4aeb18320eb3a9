"""Handlers of DatabaseInstance and DatabaseCluster: parse, call reconcile, map errors; nothing else."""

from __future__ import annotations

from typing import Any

import kopf

from kubetrove.api.common import GROUP, VERSION
from kubetrove.api.resources import CLUSTER, INSTANCE, Kind, Parsed, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.handlers.config import OperatorConfig
from kubetrove.handlers.errors import kopf_errors
from kubetrove.metrics import reconcile_timer
from kubetrove.reconcile import run
from kubetrove.reconcile.errors import InvalidSpec

INTERVAL = OperatorConfig.from_env().status_interval


def parse(kind: Kind, body: Any) -> Parsed[InstanceSpec]:
    """The body as a typed object (a ClusterSpec for clusters)."""
    return parse_body(kind, body, kind.spec)  # type: ignore[arg-type]


async def _reconcile(kind: Kind, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger) -> None:
    with kopf_errors(), reconcile_timer(kind.kind, (InvalidSpec,)):
        await run.reconcile(parse(kind, body), body.get("status"), memo.deps, logger)


@kopf.on.resume(GROUP, VERSION, INSTANCE.plural)
@kopf.on.create(GROUP, VERSION, INSTANCE.plural)
@kopf.on.update(GROUP, VERSION, INSTANCE.plural, field="spec")
async def databaseinstance_spec(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Reconcile a DatabaseInstance with its spec."""
    await _reconcile(INSTANCE, body, memo, logger)


@kopf.on.resume(GROUP, VERSION, CLUSTER.plural)
@kopf.on.create(GROUP, VERSION, CLUSTER.plural)
@kopf.on.update(GROUP, VERSION, CLUSTER.plural, field="spec")
async def databasecluster_spec(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Reconcile a DatabaseCluster with its spec."""
    await _reconcile(CLUSTER, body, memo, logger)


@kopf.timer(GROUP, VERSION, INSTANCE.plural, interval=INTERVAL, initial_delay=INTERVAL)
@kopf.timer(GROUP, VERSION, CLUSTER.plural, interval=INTERVAL, initial_delay=INTERVAL)
async def database_refresh(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Level-triggered backstop: refresh status (and drive OnDelete rolls) from observed state."""
    kind = INSTANCE if body["kind"] == INSTANCE.kind else CLUSTER
    with kopf_errors():
        await run.refresh(parse(kind, body), body.get("status"), memo.deps, logger)


@kopf.on.delete(GROUP, VERSION, INSTANCE.plural)
@kopf.on.delete(GROUP, VERSION, CLUSTER.plural)
async def database_delete(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Apply the volumes deletion policy; every other child goes by its owner reference."""
    kind = INSTANCE if body["kind"] == INSTANCE.kind else CLUSTER
    with kopf_errors():
        await run.delete(parse(kind, body), memo.deps, logger)
