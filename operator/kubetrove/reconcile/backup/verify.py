"""Restore verification (``spec.backup.verify``): prove the newest backup restores, then clean up.

One pass per owner (DatabaseInstance or DatabaseCluster), driven by a kopf timer; the state lives in
each DatabaseBackup's ``status.verification``, so a restarted operator resumes where it was:

1. Every in-flight verification takes one step (verify_plan.next_step): create the throwaway
   instance if missing (for a ring's backup a DatabaseCluster of as many nodes: verify_plan); fail
   when it went Failed (the restore was refused), when the restore init container keeps failing, or
   when it is not Ready in time; once Ready, ask ITS agent (POST /v1/verify; on a ring every member's,
   each with its node's backup id) and compare with what the backup recorded
   (verify_plan.compare_members).
2. With none in flight, the newest Completed backup not yet verified is started: the verification is
   recorded (phase Restoring) BEFORE the instance is created, so a crash in between only re-creates it.
3. Throwaway instances of ended verifications are deleted (the backup also owns them: the garbage
   collector removes them with the backup).
4. The owner's BackupVerified condition, ``status.recovery`` and the metrics are set from the verification
   that ended last (re-asserted every pass: the owner's reconcile may have written its conditions from an
   older read).

Recovery is timed (verify_plan's docstring): the restore time is recorded when the check starts, the
backup's age when the verdict is written, the target (spec.backup.verifyMaxRestoreSeconds) is fixed when
the verification starts, so changing it later does not re-judge a verification under way.
"""

from __future__ import annotations

import contextlib
import datetime

from kubetrove.agent.protocol import VerifyReply, VerifyRequest
from kubetrove.api import conditions
from kubetrove.api.backup import BackupSpec, BackupVerification, VerificationPhase
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, Kind, ObjectRef, Parsed, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.api.status import ConditionType, RecoveryTiming, ResourceStatus
from kubetrove.k8s import events, ops
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import CUSTOM, POD
from kubetrove.k8s.port import Obj
from kubetrove.members import AgentCallError, AgentUnreachable
from kubetrove.reconcile.backup import verify_plan as plan
from kubetrove.reconcile.backup.target import (
    Member,
    StorageProblem,
    backup_storage,
    every_member,
    find_member,
    resolve_target,
)
from kubetrove.reconcile.context import Deps, Logger
from kubetrove.reconcile.errors import NotReady
from kubetrove.render import labels

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
BACKUPS = CUSTOM[BACKUP.kind]
THROWAWAY_KINDS = (INSTANCE, CLUSTER)  # a DatabaseCluster verifies a ring's backup (verify_plan)


def _parsed(kind: Kind, throwaway: Obj) -> Parsed[InstanceSpec]:
    return parse_body(kind, throwaway, kind.spec)  # type: ignore[arg-type]


async def _event(deps: Deps, ref: ObjectRef, ok: bool, reason: str, note: str, log: Logger) -> None:
    etype = events.EventType.NORMAL if ok else events.EventType.WARNING
    await events.post_quietly(
        deps.kube, ref, etype, reason, note, "VerifyBackup", log, deps.reporting_instance
    )


async def _create_instance(owner: Parsed[InstanceSpec], body: Obj, deps: Deps) -> None:
    with contextlib.suppress(Conflict):  # created by an earlier pass: the name is the idempotency key
        await deps.kube.create(plan.throwaway_instance(owner, body))


async def _start(owner: Parsed[InstanceSpec], body: Obj, deps: Deps, log: Logger) -> None:
    backup = parse_body(BACKUP, body, BackupSpec)
    name = plan.throwaway_name(backup.ref.name)
    assert owner.spec.backup is not None
    verification = BackupVerification(
        phase=VerificationPhase.RESTORING,
        instance=name,
        started_at=conditions.stamp(deps.clock()),
        max_restore_seconds=owner.spec.backup.verify_max_restore_seconds,
    )
    await ops.patch_status(deps.kube, backup.ref, {"verification": verification.to_wire()})
    await _create_instance(owner, body, deps)
    kind = plan.throwaway_kind(body).kind
    log.info("Verifying DatabaseBackup %s: restoring it into %s %s", backup.ref.name, kind, name)
    note = f"restoring into the throwaway {kind} {name}"
    await _event(deps, backup.ref, True, "BackupVerificationStarted", note, log)


async def _members(deps: Deps, kind: Kind, throwaway: Obj, count: int) -> list[Member]:
    """The throwaway's members to ask: every one of a ring (in order), else the one instance."""
    parsed = _parsed(kind, throwaway)
    if kind is CLUSTER:
        return await every_member(deps, parsed, count)
    return [await find_member(deps, parsed)]


async def _ask(deps: Deps, member: Member, request: VerifyRequest) -> VerifyReply:
    async with deps.members.agents(member.token) as agents:
        return await agents.call(member.pod, member.url, lambda a: a.verify(request))


async def _check(
    owner: Parsed[InstanceSpec], backup: Obj, kind: Kind, throwaway: Obj, deps: Deps
) -> plan.Outcome | str:
    """The verdict from the throwaway's agents, or why they could not be asked yet (a transient problem).

    Each member is asked about the stored backup it restored (verify_plan.member_backup_ids).
    """
    parsed = parse_body(BACKUP, backup, BackupSpec)
    ids = plan.member_backup_ids(backup)
    try:
        target = await resolve_target(
            deps.kube, parsed.ref.namespace, backup_storage(parsed.spec, owner.spec)
        )
        members = await _members(deps, kind, throwaway, len(ids))
    except StorageProblem as exc:
        return plan.Outcome(False, plan.Reason.AGENT_ERROR, str(exc))
    except NotReady as exc:
        return str(exc)
    replies = []
    for member, backup_id in zip(members, ids, strict=True):
        request = VerifyRequest(backup_id=backup_id, source=target)
        try:
            reply = await _ask(deps, member, request)
        except AgentUnreachable as exc:
            return str(exc)
        except AgentCallError as exc:
            message = f"{member.pod}: {exc.said}"
            if exc.status in (400, 404, 501):  # refused (e.g. no manifest): asking again cannot help
                return plan.Outcome(False, plan.Reason.AGENT_ERROR, message)
            return message
        replies.append((member.pod, reply))
    return plan.compare_members(replies)


async def _finish(
    owner: Parsed[InstanceSpec],
    backup: Parsed[BackupSpec],
    body: Obj,
    outcome: plan.Outcome,
    deps: Deps,
    log: Logger,
) -> None:
    status = plan.status_of(body)
    assert status.verification is not None
    now = deps.clock()
    final = plan.finished(status.verification, outcome, now, status.completed_at)
    verified = plan.verified_condition(
        backup.ref.name, final, backup.ref.generation, status.conditions, conditions.stamp(now)
    )
    patch = {"verification": final.to_wire(), "conditions": [c.to_wire() for c in verified]}
    await ops.patch_status(deps.kube, backup.ref, patch)
    ref = owner.ref
    result = "success" if outcome.ok else "failure"
    deps.metrics.backup_verifications.labels(ref.namespace, ref.kind.kind, ref.name, result).inc()
    reason = "BackupVerified" if outcome.ok else "BackupVerificationFailed"
    note = outcome.message if outcome.ok else f"{outcome.reason}: {outcome.message}"
    (log.info if outcome.ok else log.warning)("DatabaseBackup %s verification: %s", backup.ref.name, note)
    await _event(deps, backup.ref, outcome.ok, reason, note, log)
    await _event(deps, ref, outcome.ok, reason, f"DatabaseBackup {backup.ref.name}: {note}", log)
    kind = CUSTOM[plan.throwaway_kind(body).kind]
    await deps.kube.delete(kind, ref.namespace, plan.instance_of(backup.ref.name, final))


async def _step(
    owner: Parsed[InstanceSpec], body: Obj, deps: Deps, log: Logger, limit: datetime.timedelta
) -> None:
    """One step of an in-flight verification."""
    backup = parse_body(BACKUP, body, BackupSpec)
    verification = plan.status_of(body).verification
    assert verification is not None
    ns, now, kind = backup.ref.namespace, deps.clock(), plan.throwaway_kind(body)
    instance = await deps.kube.get(CUSTOM[kind.kind], ns, plan.instance_of(backup.ref.name, verification))
    pods: list[Obj] = []
    if instance is not None:
        selector = labels.selector_labels(_parsed(kind, instance).ref, owner.spec.datastore.type)
        pods = await deps.kube.list(POD, ns, selector)
    target = verification.max_restore_seconds
    step, outcome = plan.next_step(verification, instance, pods, now, limit, target)
    if step is plan.Step.CREATE:
        await _create_instance(owner, body, deps)
        return
    if step is plan.Step.WAIT:
        return
    if step is plan.Step.CHECK:
        assert instance is not None
        if verification.phase is not VerificationPhase.CHECKING:
            seconds = plan.restore_seconds(verification, instance, now)
            verification = verification.model_copy(
                update={"phase": VerificationPhase.CHECKING, "restore_seconds": seconds}
            )
            await ops.patch_status(deps.kube, backup.ref, {"verification": verification.to_wire()})
        verdict = await _check(owner, body, kind, instance, deps)
        if isinstance(verdict, str):
            if now - conditions.parse_time(verification.started_at or conditions.stamp(now)) <= limit:
                log.info("DatabaseBackup %s: cannot check yet: %s", backup.ref.name, verdict)
                return
            verdict = plan.Outcome(False, plan.Reason.AGENT_ERROR, f"no answer in time: {verdict}")
        outcome = plan.within_target(verdict, verification.restore_seconds, target)
    assert outcome is not None
    if verification is not plan.status_of(body).verification:
        body = {**body, "status": {**(body.get("status") or {}), "verification": verification.to_wire()}}
    await _finish(owner, backup, body, outcome, deps, log)


async def _clean_up(owner: Parsed[InstanceSpec], backups: list[Obj], deps: Deps, log: Logger) -> None:
    """Delete the throwaway instances (and rings) whose verification has ended (or whose backup is gone)."""
    busy = {b["metadata"]["name"] for b in plan.in_flight(backups)}
    ns = owner.ref.namespace
    for kind in THROWAWAY_KINDS:
        rtype = CUSTOM[kind.kind]
        for inst in await deps.kube.list(rtype, ns, {plan.VERIFY_OWNER: owner.ref.name}):
            meta = inst["metadata"]
            if meta.get("deletionTimestamp") or (meta.get("labels") or {}).get(plan.VERIFIES) in busy:
                continue
            log.info("Deleting the throwaway %s %s", kind.kind, meta["name"])
            await deps.kube.delete(rtype, ns, meta["name"])


async def _report_owner(owner: Parsed[InstanceSpec], backups: list[Obj], deps: Deps) -> None:
    """The owner's BackupVerified condition, status.recovery and the gauges, from the one that ended last."""
    latest = plan.latest_final(backups)
    if latest is None:
        return
    name, verification = latest
    ref = owner.ref
    labels_ = (ref.namespace, ref.kind.kind, ref.name)
    deps.metrics.backup_verification_ok.labels(*labels_).set(
        1 if verification.phase is VerificationPhase.VERIFIED else 0
    )
    success = plan.latest_success(backups)
    if success is not None:
        deps.metrics.backup_verification_success_time.labels(*labels_).set(success.timestamp())
    m = deps.metrics
    for gauge, value in (
        (m.backup_restore_seconds, verification.restore_seconds),
        (m.backup_verified_age_seconds, verification.backup_age_seconds),
        (m.backup_restore_target_seconds, verification.max_restore_seconds),
    ):
        if value is None:
            with contextlib.suppress(KeyError):  # no figure: no stale sample from an earlier verification
                gauge.remove(*labels_)
        else:
            gauge.labels(*labels_).set(value)
    live = await ops.get_custom(deps.kube, ref)
    if live is None:
        return
    status = ResourceStatus.model_validate(live.get("status") or {})
    wanted = plan.verified_condition(
        name, verification, ref.generation, status.conditions, conditions.stamp(deps.clock())
    )
    kind = ConditionType.BACKUP_VERIFIED.value
    patch: dict[str, object] = {}
    if [c for c in wanted if c.type == kind] != [c for c in status.conditions if c.type == kind]:
        patch["conditions"] = [c.to_wire() for c in wanted]
    timing = plan.recovery(name, verification)
    if status.recovery != timing:
        # A merge patch: null for figures this verification lacks, so an older one's do not linger.
        patch["recovery"] = {**_nulls(status.recovery), **timing.to_wire()}
    if patch:
        await ops.patch_status(deps.kube, ref, patch)


def _nulls(old: RecoveryTiming | None) -> dict[str, None]:
    return {k: None for k in (old.to_wire() if old else {})}


async def verify_pass(
    owner: Parsed[InstanceSpec], deps: Deps, logger: Logger, limit: datetime.timedelta = DEFAULT_TIMEOUT
) -> None:
    """One pass over the owner's backups (see the module docstring)."""
    if owner.spec.backup is None or not owner.spec.backup.verify:
        return
    ns = owner.ref.namespace
    mine = plan.of_owner(await deps.kube.list(BACKUPS, ns), owner.ref)
    active = plan.in_flight(mine)
    for body in active:
        await _step(owner, body, deps, logger, limit)
    if not active and (new := plan.to_start(mine)) is not None:
        await _start(owner, new, deps, logger)
    mine = plan.of_owner(await deps.kube.list(BACKUPS, ns), owner.ref)  # as the steps left them
    await _clean_up(owner, mine, deps, logger)
    await _report_owner(owner, mine, deps)
