"""Restore verification, the pure part: which backup, the throwaway instance, the next step, the verdict.

Everything here is a function of literal inputs (objects as the API server returns them, the agent's
``VerifyReply``), so the rules are unit-tested without a cluster; reconcile/backup/verify.py does the I/O.

Invariants:
- One verification at a time per owner, of its NEWEST Completed backup only: a backup that a newer one
  supersedes before its turn is never verified (it would say nothing about what a restore gives today).
- A backup is verified at most once: ``status.verification`` set means taken (final or in flight).
- The throwaway instance's name is a function of the backup's name alone, so a restarted operator finds
  the instance it created instead of making a second one. Its kind is a function of the backup alone: a
  ring's backup (one snapshot per node, ``status.nodes``; reconcile/backup/ring.py) restores only into a
  ring of as many nodes, member i from node i's snapshot with node i's tokens (restore.py), so its
  throwaway is a DatabaseCluster with that many replicas; any other backup's is a DatabaseInstance.
- A ring's verification asks EVERY member (each with its own node's backup id, whose manifest holds the
  ring-wide counts recorded at backup time), because the engine's check reads only the asked node's data
  (Cassandra's ``nodetool verify``); one member's failure fails the whole.
- Recovery is timed (docs/backup-verification.md, "Recovery time"): the restore time is from the
  verification's start to the throwaway instance's Ready transition (its condition's time, so the timer's
  period does not inflate it), recorded once when the check starts; the backup's age is taken when the
  verification ends. A target (spec.backup.verifyMaxRestoreSeconds) is a verdict: over it, the
  verification fails (RestoreTooSlow), early when the instance is still not Ready past the target.
- The verdict compares what the backup recorded with what the restore holds: every recorded table must
  exist with the same row count, and the same checksum where both sides have one; extra tables in the
  restore are not a failure (the engine or the operator may create its own).
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from kubetrove.agent.protocol import VerifyReply
from kubetrove.api import conditions
from kubetrove.api.backup import BackupPhase, BackupStatus, BackupVerification, VerificationPhase
from kubetrove.api.common import API_VERSION, Condition
from kubetrove.api.conditions import parse_time, stamp
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, Kind, ObjectRef, Parsed
from kubetrove.api.specs import InstanceSpec
from kubetrove.api.status import ConditionType, RecoveryTiming
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.backup.restore_status import init_done
from kubetrove.render import names

# Labels of the throwaway instance: the DatabaseBackup it verifies, and that backup's source.
VERIFIES = "kubetrove.io/verifies"
VERIFY_OWNER = "kubetrove.io/verify-owner"
SUFFIX = "-verify"
# Instance names become StatefulSet, Service and pod names; the StatefulSet's controller-revision-hash
# label ("<name>-<10 chars>") must stay within 63 characters.
MAX_NAME = 45
# Requests only: a limit could OOM-kill the restore tool or the engine; the scheduler needs a little.
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}}
# The restore init container has failed this often: the backup cannot be restored, stop waiting.
RESTORE_ATTEMPTS = 3
IN_FLIGHT = (VerificationPhase.RESTORING, VerificationPhase.CHECKING)
FINAL = (VerificationPhase.VERIFIED, VerificationPhase.FAILED)
SHOWN = 3  # tables named in a message; the rest are counted


class Reason(enum.StrEnum):
    """Why a verification failed (the condition's reason)."""

    RESTORE_FAILED = "RestoreFailed"
    RESTORE_TIMEOUT = "RestoreTimeout"
    RESTORE_TOO_SLOW = "RestoreTooSlow"
    CHECK_FAILED = "CheckFailed"
    TABLE_MISSING = "TableMissing"
    COUNTS_DIFFER = "CountsDiffer"
    CHECKSUM_DIFFERS = "ChecksumDiffers"
    AGENT_ERROR = "AgentError"


VERIFIED = "Verified"


@dataclass(frozen=True)
class Outcome:
    """The verdict of one verification."""

    ok: bool
    reason: str
    message: str
    tables: int | None = None


def throwaway_name(backup: str) -> str:
    """``<backup>-verify``; shortened with a hash of the backup's name when too long or not a DNS label."""
    plain = f"{backup}{SUFFIX}"
    if len(plain) <= MAX_NAME and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", plain):
        return plain
    digest = hashlib.sha256(backup.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9-]+", "-", backup)[: MAX_NAME - len(SUFFIX) - 9].strip("-")
    return f"{slug}-{digest}{SUFFIX}"


def instance_of(backup: str, verification: BackupVerification) -> str:
    """The throwaway instance of a verification (its recorded name; derived when a status lacks it)."""
    return verification.instance or throwaway_name(backup)


def status_of(backup: Obj) -> BackupStatus:
    """The backup's status as the model (a fresh one when absent)."""
    raw = backup.get("status")
    return BackupStatus.model_validate(raw) if raw else BackupStatus()


def of_owner(backups: list[Obj], owner: ObjectRef) -> list[Obj]:
    """The DatabaseBackups whose source is ``owner``."""
    return [
        b
        for b in backups
        if (b.get("spec") or {}).get("source") == {"kind": owner.kind.kind, "name": owner.name}
    ]


def in_flight(backups: list[Obj]) -> list[Obj]:
    """Backups whose verification has started and not ended."""
    return [b for b in backups if (v := status_of(b).verification) and v.phase in IN_FLIGHT]


def to_start(backups: list[Obj]) -> Obj | None:
    """The newest Completed backup, if its verification has not started; None otherwise."""
    done = [b for b in backups if status_of(b).phase is BackupPhase.COMPLETED]
    if not done:
        return None
    newest = max(done, key=lambda b: (status_of(b).completed_at or "", b["metadata"]["name"]))
    return newest if status_of(newest).verification is None else None


def latest_final(backups: list[Obj]) -> tuple[str, BackupVerification] | None:
    """The (backup name, verification) that ended last, or None when none has ended."""
    ended = [
        (v.completed_at or "", b["metadata"]["name"], v)
        for b in backups
        if (v := status_of(b).verification) and v.phase in FINAL
    ]
    if not ended:
        return None
    _, name, verification = max(ended, key=lambda e: (e[0], e[1]))
    return name, verification


def latest_success(backups: list[Obj]) -> datetime.datetime | None:
    """When the last successful verification ended, or None."""
    times = [
        parse_time(v.completed_at)
        for b in backups
        if (v := status_of(b).verification) and v.phase is VerificationPhase.VERIFIED and v.completed_at
    ]
    return max(times, default=None)


def throwaway_kind(backup: Obj) -> Kind:
    """DatabaseCluster for a ring's backup (one snapshot per node), else DatabaseInstance (see above)."""
    return CLUSTER if status_of(backup).nodes else INSTANCE


def member_backup_ids(backup: Obj) -> list[str]:
    """The stored backup each member of the throwaway restored, in member order: a ring's node backups
    (``status.nodes``), else the backup's own id (its uid)."""
    return [n.id for n in status_of(backup).nodes] or [backup["metadata"]["uid"]]


def throwaway_instance(owner: Parsed[InstanceSpec], backup: Obj) -> Obj:
    """The resource that restores ``backup``: owned by it (garbage-collected with it), minimal.

    A DatabaseInstance; for a ring's backup a DatabaseCluster of as many replicas as the backup has nodes
    (the only shape its restore accepts: restore.check_backup).
    """
    meta = backup["metadata"]
    spec = owner.spec
    kind = throwaway_kind(backup)
    ring = {"replicas": len(status_of(backup).nodes)} if kind is CLUSTER else {}
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {
            "name": throwaway_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {
                VERIFIES: meta["name"],
                VERIFY_OWNER: owner.ref.name,
                names.LABEL_MANAGED_BY: names.MANAGED_BY,
            },
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": BACKUP.kind,
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "datastore": spec.datastore.to_wire(),
            "storage": spec.storage.to_wire(),  # the owner's size: the restored data must fit
            "resources": RESOURCES,
            "parameters": dict(spec.parameters),  # e.g. lower_case_table_names must match the data
            "restoreFrom": {"backup": meta["name"]},
            "deletionPolicy": {"volumes": "Delete", "backups": "Delete"},
            **ring,
        },
    }


def _condition(obj: Obj | None, kind: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return {}


def restore_failure(pods: list[Obj]) -> str | None:
    """The restore init container's last error once it has failed ``RESTORE_ATTEMPTS`` times, else None."""
    for pod in pods:
        for st in (pod.get("status") or {}).get("initContainerStatuses") or []:
            last = (st.get("lastState") or {}).get("terminated") or {}
            if st.get("name") == names.RESTORE_CONTAINER and st.get("restartCount", 0) >= RESTORE_ATTEMPTS:
                how = f"{last.get('reason', 'Error')}, exit code {last.get('exitCode')}"
                said = f": {last['message'].strip()}" if (last.get("message") or "").strip() else ""
                return (
                    f"the restore init container of pod {pod['metadata']['name']} failed"
                    f" {st['restartCount']} times ({how}){said}"
                )
    return None


# Restored-condition reasons that are final once every init container is done: then they come from the
# agent (restore_status.py), whose refused and failed states never change (agent/backup/restore_gate.py).
AGENT_FINAL_REASONS = frozenset({"RestoreRefused", "RestoreFailed"})


def agent_restore_failure(instance: Obj | None, pods: list[Obj]) -> str | None:
    """The instance's Restored message when its agent refused or failed the load (a logical backup).

    A logical backup passes the init container and is loaded by the agent; a refusal (checksum) or a
    failed load is final there, so waiting for the timeout would only hide the reason for 30 minutes.
    """
    restored = _condition(instance, ConditionType.RESTORED.value)
    if restored.get("status") != "False" or restored.get("reason") not in AGENT_FINAL_REASONS:
        return None
    if not pods or not all(init_done(p) for p in pods):
        return None  # an init container's failure: the kubelet retries it (restore_failure counts)
    return str(restored.get("message") or restored["reason"])


class Step(enum.Enum):
    """What to do next with an in-flight verification."""

    CREATE = "create"  # the throwaway instance is missing: create it (idempotent by name)
    WAIT = "wait"
    CHECK = "check"  # the instance is Ready: ask its agent
    FAIL = "fail"


def next_step(
    verification: BackupVerification,
    instance: Obj | None,
    pods: list[Obj],
    now: datetime.datetime,
    timeout: datetime.timedelta,
    target: int | None = None,
) -> tuple[Step, Outcome | None]:
    """The next step of an in-flight verification; FAIL comes with its Outcome.

    ``target``: the restore-time target in seconds (spec.backup.verifyMaxRestoreSeconds), or None.
    """
    phase = ((instance or {}).get("status") or {}).get("phase")
    ready = _condition(instance, ConditionType.READY.value)
    if phase == "Failed":
        failed = _condition(instance, ConditionType.FAILED.value)
        message = failed.get("message") or ready.get("message") or "the restored instance failed"
        return Step.FAIL, Outcome(False, Reason.RESTORE_FAILED, message)
    problem = restore_failure(pods) or agent_restore_failure(instance, pods)
    if problem is not None:
        return Step.FAIL, Outcome(False, Reason.RESTORE_FAILED, problem)
    if phase == "Ready" and ready.get("status") == "True":
        return Step.CHECK, None
    elapsed = now - parse_time(verification.started_at or stamp(now))
    where = f"phase {phase}: {ready.get('message', '')}" if phase else "never created"
    if target is not None and elapsed.total_seconds() > target and elapsed <= timeout:
        message = (
            f"{verification.instance} not Ready after {int(elapsed.total_seconds())}s, over the target"
            f" restore time of {target}s (spec.backup.verifyMaxRestoreSeconds) ({where})"
        )
        return Step.FAIL, Outcome(False, Reason.RESTORE_TOO_SLOW, message)
    if elapsed > timeout:
        message = f"{verification.instance} not Ready after {int(timeout.total_seconds())}s ({where})"
        return Step.FAIL, Outcome(False, Reason.RESTORE_TIMEOUT, message)
    return (Step.CREATE if instance is None else Step.WAIT), None


def restore_seconds(verification: BackupVerification, instance: Obj, now: datetime.datetime) -> float:
    """Seconds from the verification's start to the throwaway instance's Ready (the measured RTO).

    The Ready condition's lastTransitionTime is when the instance became Ready; ``now`` (the pass that
    saw it Ready) stands in when that time is missing or older than the start (a clock skew or a stale
    condition), which overstates by at most one timer period.
    """
    started = parse_time(verification.started_at or stamp(now))
    ready_at = _condition(instance, ConditionType.READY.value).get("lastTransitionTime")
    end = parse_time(ready_at) if ready_at else now
    if end < started or end > now:
        end = now
    return round((end - started).total_seconds(), 1)


def within_target(outcome: Outcome, seconds: float | None, target: int | None) -> Outcome:
    """``outcome``, turned into a RestoreTooSlow failure when the data matched but the restore took too long.

    A data failure stays what it is (it is the worse news); the message keeps the check's result.
    """
    if not outcome.ok or target is None or seconds is None or seconds <= target:
        return outcome
    message = (
        f"the restore took {seconds:g}s, over the target of {target}s (spec.backup.verifyMaxRestoreSeconds);"
        f" the data matched: {outcome.message}"
    )
    return Outcome(False, Reason.RESTORE_TOO_SLOW, message, outcome.tables)


def _some(tables: list[str]) -> str:
    more = f" and {len(tables) - SHOWN} more" if len(tables) > SHOWN else ""
    return ", ".join(tables[:SHOWN]) + more


def compare(reply: VerifyReply) -> Outcome:
    """The verdict: the consistency check first, then every recorded table against the restored one."""
    n = len(reply.recorded)
    bad = [f"{c.table} ({c.message})" if c.message else c.table for c in reply.checks if not c.ok]
    if bad:
        return Outcome(False, Reason.CHECK_FAILED, f"{reply.check_tool} reports {_some(bad)}", n)
    missing, counts, sums = [], [], []
    for table, want in sorted(reply.recorded.items()):
        got = reply.observed.get(table)
        if got is None:
            missing.append(table)
        elif want.changed:  # written during the backup: the copy's rows are unknown (agent/backup/runner.py)
            continue
        elif got.rows != want.rows:
            counts.append(f"{table}: {want.rows} rows at backup time, {got.rows} restored")
        elif want.checksum is not None and got.checksum is not None and want.checksum != got.checksum:
            sums.append(f"{table}: checksum {want.checksum} at backup time, {got.checksum} restored")
    if missing:
        return Outcome(False, Reason.TABLE_MISSING, f"missing after restore: {_some(missing)}", n)
    if counts:
        return Outcome(False, Reason.COUNTS_DIFFER, _some(counts), n)
    if sums:
        return Outcome(False, Reason.CHECKSUM_DIFFERS, _some(sums), n)
    changed = sum(1 for t in reply.recorded.values() if t.changed)
    summed = sum(1 for t in reply.recorded.values() if t.checksum is not None and not t.changed)
    check = "no consistency check for this engine" if reply.check_tool == "none" else f"{reply.check_tool} OK"
    message = f"{n - changed} tables match the backup's row counts ({summed} also by checksum); {check}"
    if changed:
        message += f"; {changed} written while the backup ran: restored, rows not compared"
    return Outcome(True, VERIFIED, message, n)


def compare_members(replies: list[tuple[str, VerifyReply]]) -> Outcome:
    """The verdict over every member asked (pod, reply), in member order: one member's is ``compare``'s;
    of several (a ring), the first failure named by its pod, else a success naming every node."""
    outcomes = [(pod, compare(reply)) for pod, reply in replies]
    if len(outcomes) == 1:
        return outcomes[0][1]
    for pod, outcome in outcomes:
        if not outcome.ok:
            return Outcome(False, outcome.reason, f"{pod}: {outcome.message}", outcome.tables)
    first = outcomes[0][1]
    pods = ", ".join(pod for pod, _ in outcomes)
    message = f"{first.message}; on each of the {len(outcomes)} nodes ({pods})"
    return Outcome(True, VERIFIED, message, first.tables)


def finished(
    verification: BackupVerification,
    outcome: Outcome,
    now: datetime.datetime,
    backup_completed_at: str | None = None,
) -> BackupVerification:
    """The final verification record, with the backup's age now (None when its completion is unknown)."""
    age = None
    if backup_completed_at:
        age = round(max(0.0, (now - parse_time(backup_completed_at)).total_seconds()), 1)
    return verification.model_copy(
        update={
            "phase": VerificationPhase.VERIFIED if outcome.ok else VerificationPhase.FAILED,
            "completed_at": stamp(now),
            "backup_age_seconds": age,
            "reason": None if outcome.ok else outcome.reason,
            "message": outcome.message,
            "tables": outcome.tables,
        }
    )


def recovery(backup: str, verification: BackupVerification) -> RecoveryTiming:
    """The owner's ``status.recovery`` from the verification that ended last."""
    return RecoveryTiming(
        backup=backup,
        verified=verification.phase is VerificationPhase.VERIFIED,
        completed_at=verification.completed_at,
        restore_seconds=verification.restore_seconds,
        backup_age_seconds=verification.backup_age_seconds,
        max_restore_seconds=verification.max_restore_seconds,
    )


def verified_condition(
    backup: str, verification: BackupVerification, generation: int | None, previous: list[Condition], now: str
) -> list[Condition]:
    """``previous`` with the BackupVerified condition set from ``verification`` (an ended one)."""
    ok = verification.phase is VerificationPhase.VERIFIED
    new = conditions.make(
        ConditionType.BACKUP_VERIFIED.value,
        ok,
        VERIFIED if ok else (verification.reason or Reason.RESTORE_FAILED.value),
        f"DatabaseBackup {backup}: {verification.message or ''}".strip(),
        generation,
    )
    return conditions.put(previous, [new], now)
