"""Handlers of DatabaseBackup and of backup schedules: parse, call reconcile.backup, map errors."""

from __future__ import annotations

import datetime
from typing import Any

import kopf

from kubetrove.api import conditions
from kubetrove.api.backup import BackupSpec
from kubetrove.api.common import GROUP, VERSION
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, parse_body
from kubetrove.handlers.errors import kopf_errors
from kubetrove.handlers.resources import parse
from kubetrove.k8s import ops
from kubetrove.reconcile.backup import lifecycle, schedule, verify
from kubetrove.runtime.config import OperatorConfig

# The schedule check runs this often: a one-minute cron slot is taken within this delay.
SCHEDULE_INTERVAL = 15.0
# Each pass takes one step of a verification (they take minutes: a restore, then a full check).
VERIFY_INTERVAL = 20.0


async def databasebackup_run(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Take the backup and poll it to Completed or Failed (NotReady -> kopf retries after its delay)."""
    with kopf_errors():
        parsed = parse_body(BACKUP, body, BackupSpec)
        # The body kopf hands over can be stale (create and resume run in one cycle): read the live one.
        live = await ops.get_custom(memo.deps.kube, parsed.ref)
        if live is None or live["metadata"].get("deletionTimestamp"):
            return
        created = live["metadata"].get("creationTimestamp") or conditions.stamp(memo.deps.clock())
        parsed = parse_body(BACKUP, live, BackupSpec)
        await lifecycle.reconcile_backup(parsed, created, live.get("status"), memo.deps, logger)


async def databasebackup_delete(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """deletionPolicy Delete: remove the stored backup through a member's agent; Retain keeps it."""
    with kopf_errors():
        parsed = parse_body(BACKUP, body, BackupSpec)
        await lifecycle.delete_data(parsed, body.get("status"), memo.deps, logger)


def _scheduled(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("backup") or {}).get("schedule"))


async def backup_schedule(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Create the due slot's DatabaseBackup and prune beyond ``keep``."""
    kind = INSTANCE if body["kind"] == INSTANCE.kind else CLUSTER
    stamp = body["metadata"].get("creationTimestamp")
    created = datetime.datetime.fromisoformat(stamp) if stamp else memo.deps.clock()
    with kopf_errors():
        await schedule.schedule_pass(parse(kind, body), created, memo.deps, logger)


def _verified(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("backup") or {}).get("verify"))


async def backup_verify(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Restore the newest completed backup into a throwaway instance, check it, report, clean up."""
    kind = INSTANCE if body["kind"] == INSTANCE.kind else CLUSTER
    with kopf_errors():
        limit = datetime.timedelta(seconds=memo.config.verify_timeout_seconds)
        await verify.verify_pass(parse(kind, body), memo.deps, logger, limit)


def register(into: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    """The DatabaseBackup handlers, and the schedule and verification timers of both owner kinds."""
    kopf.on.resume(GROUP, VERSION, BACKUP.plural, registry=into)(databasebackup_run)
    kopf.on.create(GROUP, VERSION, BACKUP.plural, registry=into)(databasebackup_run)
    kopf.on.delete(GROUP, VERSION, BACKUP.plural, retries=10, backoff=15, registry=into)(
        databasebackup_delete
    )
    for kind in (INSTANCE, CLUSTER):
        kopf.timer(GROUP, VERSION, kind.plural, interval=SCHEDULE_INTERVAL, when=_scheduled, registry=into)(
            backup_schedule
        )
        kopf.timer(GROUP, VERSION, kind.plural, interval=VERIFY_INTERVAL, when=_verified, registry=into)(
            backup_verify
        )
