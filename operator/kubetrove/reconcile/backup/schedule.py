"""Scheduled backups (``spec.backup.schedule``) and retention (``spec.backup.keep``).

Each pass of the timer creates at most one DatabaseBackup: the one of the newest cron slot that has come,
named ``<source>-<yyyymmddhhmm>`` of that slot. The name is the idempotency key: a second pass in the same
slot (or a restarted operator) gets a Conflict and does nothing, so no slot is ever backed up twice.
Slots missed while the operator was down are not caught up; only the newest is taken (like a CronJob with
``concurrencyPolicy: Forbid`` and a short deadline). Slots before the source existed are never due.

Each pass also sets the schedule's gauges (``kubetrove_backup_schedule_interval_seconds`` and
``kubetrove_backup_last_completion_timestamp_seconds``) from the backups it lists for retention: the alert
on scheduled backups that stopped completing compares the two.

Retention keeps the ``keep`` newest Completed scheduled backups of the source and deletes the older
DatabaseBackup objects; each one's deletionPolicy (the source's ``deletionPolicy.backups``) decides
whether its stored data goes too. Running and Failed backups are not counted and not pruned here.
"""

from __future__ import annotations

import contextlib
import datetime

from croniter import croniter

from kubetrove.api import conditions
from kubetrove.api.backup import SCHEDULED_BY, BackupPhase
from kubetrove.api.resources import BACKUP, Parsed
from kubetrove.api.specs import InstanceSpec
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import CUSTOM
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.context import Deps, Logger
from kubetrove.render import labels

SLOT_FORMAT = "%Y%m%d%H%M"


def due_slot(schedule: str, created: datetime.datetime, now: datetime.datetime) -> datetime.datetime | None:
    """The newest cron slot at or before ``now``, or None when it is before ``created`` (pure)."""
    # croniter's get_prev excludes its start: start one second after ``now`` so a slot at ``now`` counts.
    start = now.replace(microsecond=0) + datetime.timedelta(seconds=1)
    slot: datetime.datetime = croniter(schedule, start).get_prev(datetime.datetime)
    return slot if slot >= created.replace(second=0, microsecond=0) else None


def slot_interval(schedule: str, now: datetime.datetime) -> float:
    """Seconds between the two newest cron slots at or before ``now`` (pure): what "the schedule" means
    to the alert on backups that stopped completing (a cron with uneven gaps gives the current gap)."""
    it = croniter(schedule, now.replace(microsecond=0) + datetime.timedelta(seconds=1))
    newest: datetime.datetime = it.get_prev(datetime.datetime)
    older: datetime.datetime = it.get_prev(datetime.datetime)
    return (newest - older).total_seconds()


def last_completion(backups: list[Obj]) -> datetime.datetime | None:
    """When the newest Completed backup of ``backups`` completed; while none has, when the oldest was
    created (the schedule's first attempt: "no completed backup" is counted from it); None without any."""
    done = [
        conditions.parse_time(st["completedAt"])
        for b in backups
        if (st := b.get("status") or {}).get("phase") == BackupPhase.COMPLETED.value and st.get("completedAt")
    ]
    if done:
        return max(done)
    created = [conditions.parse_time(b["metadata"]["creationTimestamp"]) for b in backups
               if b["metadata"].get("creationTimestamp")]  # fmt: skip
    return min(created) if created else None


def backup_name(source: str, slot: datetime.datetime) -> str:
    """``<source>-<yyyymmddhhmm>`` of the slot (UTC)."""
    return f"{source}-{slot.astimezone(datetime.UTC).strftime(SLOT_FORMAT)}"


def scheduled_backup(source: Parsed[InstanceSpec], slot: datetime.datetime) -> Obj:
    """The DatabaseBackup manifest of one slot, owned by the source."""
    policy = source.spec.backup
    assert policy is not None
    meta = labels.metadata(source.ref, source.spec.datastore.type, backup_name(source.ref.name, slot))
    meta["labels"][SCHEDULED_BY] = source.ref.name
    return {
        "apiVersion": CUSTOM[BACKUP.kind].api_version,
        "kind": BACKUP.kind,
        "metadata": meta,
        "spec": {
            "source": {"kind": source.ref.kind.kind, "name": source.ref.name},
            "method": policy.method.value,
            # The stored data of a pruned backup follows the source's policy for its backups.
            "deletionPolicy": source.spec.deletion_policy.backups.value,
        },
    }


def to_prune(backups: list[Obj], keep: int) -> list[str]:
    """Names of the Completed backups beyond the ``keep`` newest (by completedAt, then name)."""

    def key(b: Obj) -> tuple[str, str]:
        return ((b.get("status") or {}).get("completedAt") or "", b["metadata"]["name"])

    done = [b for b in backups if (b.get("status") or {}).get("phase") == BackupPhase.COMPLETED.value]
    done.sort(key=key, reverse=True)
    return [b["metadata"]["name"] for b in done[keep:]]


async def schedule_pass(
    source: Parsed[InstanceSpec], created: datetime.datetime, deps: Deps, logger: Logger
) -> str | None:
    """Create the due slot's DatabaseBackup (if not there yet) and prune; return the name created."""
    policy = source.spec.backup
    if policy is None or policy.schedule is None:
        return None
    ns, made = source.ref.namespace, None
    slot = due_slot(policy.schedule, created, deps.clock())
    if slot is not None:
        manifest = scheduled_backup(source, slot)
        try:
            await deps.kube.create(manifest)
            made = manifest["metadata"]["name"]
            logger.info("Scheduled backup %s created for slot %s", made, slot.isoformat())
        except Conflict:
            pass  # this slot's backup exists: the name is the idempotency key
    rtype = CUSTOM[BACKUP.kind]
    backups = await deps.kube.list(rtype, ns, {SCHEDULED_BY: source.ref.name})
    _report(source, policy.schedule, backups, deps)
    for name in to_prune(backups, policy.keep):
        logger.info("Retention (keep %d): deleting DatabaseBackup %s", policy.keep, name)
        await deps.kube.delete(rtype, ns, name)
    return made


def _report(source: Parsed[InstanceSpec], schedule: str, backups: list[Obj], deps: Deps) -> None:
    """The schedule's gauges (every pass: an operator restart loses nothing)."""
    ref = source.ref
    labels_ = (ref.namespace, ref.kind.kind, ref.name)
    deps.metrics.backup_schedule_interval.labels(*labels_).set(slot_interval(schedule, deps.clock()))
    completed = last_completion(backups)
    if completed is None:
        with contextlib.suppress(KeyError):
            deps.metrics.backup_last_completion.remove(*labels_)
    else:
        deps.metrics.backup_last_completion.labels(*labels_).set(completed.timestamp())
