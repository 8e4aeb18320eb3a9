"""One DatabaseBackup, from Pending to Completed or Failed, through the chosen member's agent.

Idempotent by construction: the agent's backup id is the DatabaseBackup's uid, and POST /v1/backups is
idempotent per id, so an operator restart neither duplicates nor loses a backup. Each pass:

1. A finished status (Completed, Failed) is final: nothing to do.
2. Resolve the source, the method and the target; a problem retrying cannot fix -> Failed + Warning Event.
3. The member: the one pinned in the ``kubetrove.io/backup-member`` annotation (it runs the backup), else
   a replica where possible, pinned BEFORE the POST so a restart polls the same agent.
4. GET /v1/backups/{uid}; 404 (never started, or the agent restarted and forgot it) -> POST the same id:
   the agent reports a backup whose manifest is already stored as Completed, else (re)starts it.
5. Write the status from the agent's reply (only when it changed), an Event per phase change, and raise
   NotReady while it runs so the handler polls again.

A ring (a Cassandra DatabaseCluster) is backed up on EVERY member instead, one stored backup per node
(reconcile/backup/ring.py), listed in ``status.nodes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kubetrove.agent.protocol import BackupMethod as WireMethod
from kubetrove.agent.protocol import BackupReply, BackupRequest, BackupTarget, Ok
from kubetrove.api import conditions
from kubetrove.api.backup import BackupPhase, BackupSpec, BackupStatus, SourceKind
from kubetrove.api.common import Condition, DeletionPolicy
from kubetrove.api.policies import BackupMethod
from kubetrove.api.resources import CLUSTER, INSTANCE, Parsed, parse_body
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.api.status import ConditionType
from kubetrove.datastores.base import HAMode
from kubetrove.datastores.registry import REGISTRY
from kubetrove.k8s import events, ops
from kubetrove.k8s.kinds import CUSTOM
from kubetrove.members import Agent, AgentCallError, AgentUnreachable
from kubetrove.metrics import OperatorMetrics
from kubetrove.reconcile.backup import ring
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
from kubetrove.render.agent_sidecar import backup_claim

MEMBER_ANNOTATION = "kubetrove.io/backup-member"
POLL_SECONDS = 5
FINAL = (BackupPhase.COMPLETED, BackupPhase.FAILED)
UNKNOWN = "unknown"  # a metric label not known yet (the source is gone, or its engine unread)
# Fields the agent's reply and the DatabaseBackup status share, name for name.
SAME_FIELDS = {
    "engine",
    "engine_version",
    "started_at",
    "completed_at",
    "size_bytes",
    "sha256",
    "position",
    "location",
    "throughput_mib_per_s",
    "error",
}


class Refused(Exception):
    """The backup cannot be taken as specified; it is marked Failed."""


async def load_source(deps: Deps, namespace: str, spec: BackupSpec) -> Parsed[InstanceSpec]:
    """The source instance or cluster, parsed; Refused when it does not exist."""
    kind = INSTANCE if spec.source.kind is SourceKind.INSTANCE else CLUSTER
    body = await deps.kube.get(CUSTOM[kind.kind], namespace, spec.source.name)
    if body is None:
        raise Refused(f"source {kind.kind} {namespace}/{spec.source.name} not found")
    return parse_body(kind, body, kind.spec)  # type: ignore[arg-type]


def wire_method(spec: BackupSpec, source: Parsed[InstanceSpec]) -> WireMethod:
    """The method the agent runs: the requested one, or the engine's preferred one for ``auto``."""
    supported = REGISTRY[source.spec.datastore.type].backup_methods
    method = spec.method if spec.method is not BackupMethod.AUTO else supported[0]
    if method not in supported:
        raise Refused(f"{source.spec.datastore.type} has no {method} backup method")
    return WireMethod(method.value)


def parse_status(raw: object) -> BackupStatus:
    """The stored status, or a fresh Pending one."""
    return BackupStatus.model_validate(raw) if raw else BackupStatus()


def _conditions(
    phase: BackupPhase, message: str, gen: int, previous: BackupStatus, now: str
) -> list[Condition]:
    wanted = [
        (ConditionType.PROGRESSING, phase not in FINAL),
        (ConditionType.READY, phase is BackupPhase.COMPLETED),
        (ConditionType.FAILED, phase is BackupPhase.FAILED),
    ]
    own = [conditions.make(kind.value, on, phase.value, message, gen) for kind, on in wanted]
    return conditions.with_times(own, previous.conditions, now)


def from_reply(reply: BackupReply, previous: BackupStatus, gen: int, now: str) -> BackupStatus:
    """The DatabaseBackup status the agent's reply describes."""
    phase = BackupPhase(reply.phase.value)
    message = reply.error or f"{reply.method.value} backup {phase.value.lower()}"
    return BackupStatus(
        **reply.model_dump(include=SAME_FIELDS),
        phase=phase,
        conditions=_conditions(phase, message, gen, previous, now),
        observed_generation=gen,
        method=f"{reply.method.value}/{reply.tool}" if reply.tool else reply.method.value,
    )


def failed(message: str, previous: BackupStatus, gen: int, now: str) -> BackupStatus:
    """A Failed status carrying ``message`` (what was known before is kept)."""
    conditions = _conditions(BackupPhase.FAILED, message, gen, previous, now)
    update = {
        "phase": BackupPhase.FAILED,
        "error": message,
        "conditions": conditions,
        "observed_generation": gen,
    }
    return previous.model_copy(update=update)


async def _event(
    deps: Deps, parsed: Parsed[BackupSpec], warning: bool, reason: str, message: str, log: Logger
) -> None:
    etype = events.EventType.WARNING if warning else events.EventType.NORMAL
    await events.post_quietly(
        deps.kube, parsed.ref, etype, reason, message, "Backup", log, deps.reporting_instance
    )


async def _write(
    deps: Deps, parsed: Parsed[BackupSpec], previous: BackupStatus, new: BackupStatus, log: Logger
) -> None:
    if new.to_wire() != previous.to_wire():
        await ops.patch_status(deps.kube, parsed.ref, new.to_wire())
    if new.phase is previous.phase and previous.started_at is not None:
        return
    where = f" to {new.location}" if new.location else ""
    if new.phase is BackupPhase.RUNNING:
        await _event(deps, parsed, False, "BackupStarted", f"{new.method} backup started{where}", log)
    elif new.phase is BackupPhase.COMPLETED:
        note = f"{new.size_bytes} bytes, sha256 {new.sha256}{where}"
        await _event(deps, parsed, False, "BackupCompleted", note, log)
    elif new.phase is BackupPhase.FAILED:
        await _event(deps, parsed, True, "BackupFailed", new.error or "failed", log)


async def _ask_agent(deps: Deps, member: Member, request: BackupRequest) -> BackupReply:
    async with deps.members.agents(member.token) as agents:
        try:
            try:
                return await agents.call(member.pod, member.url, lambda a: a.get_backup(request.id))
            except AgentCallError as exc:
                if exc.status != 404:
                    raise
                return await agents.call(member.pod, member.url, lambda a: a.start_backup(request))
        except AgentCallError as exc:
            if exc.status in (400, 501):  # the agent refuses the request itself: retrying cannot help
                raise Refused(f"{member.pod}: {exc.said}") from exc
            raise NotReady(str(exc), 15) from exc


async def reconcile_backup(
    parsed: Parsed[BackupSpec], created_at: str, raw_status: object, deps: Deps, logger: Logger
) -> BackupStatus:
    """One pass over a DatabaseBackup (see the module docstring); raises NotReady while it is not final."""
    previous = parse_status(raw_status)
    if previous.phase in FINAL:
        return previous
    ref, now = parsed.ref, conditions.stamp(deps.clock())
    engine, method = UNKNOWN, parsed.spec.method.value  # the metrics' labels, as far as known
    try:
        source = await load_source(deps, ref.namespace, parsed.spec)
        engine = source.spec.datastore.type.value
        target = await resolve_target(
            deps.kube, ref.namespace, backup_storage(parsed.spec, source.spec), backup_claim(source.spec)
        )
        request = BackupRequest(
            id=ref.uid, method=wire_method(parsed.spec, source), target=target, created_at=created_at
        )
        method = request.method.value
        if is_ring(source):
            return await _ring_backup(deps, parsed, source, request, previous, now, logger)
        pinned = parsed.annotations.get(MEMBER_ANNOTATION)
        member = await find_member(deps, source, pinned)
        if pinned is None:
            patch = {"metadata": {"annotations": {MEMBER_ANNOTATION: member.pod}}}
            await deps.kube.patch(CUSTOM[ref.kind.kind], ref.namespace, ref.name, patch)
        reply = await _ask_agent(deps, member, request)
    except (Refused, StorageProblem) as exc:
        new = failed(str(exc), previous, ref.generation, now)
        await _write(deps, parsed, previous, new, logger)
        deps.metrics.backup_failures.labels(engine, method).inc()
        return new
    new = from_reply(reply, previous, ref.generation, now)
    await _write(deps, parsed, previous, new, logger)
    if new.phase not in FINAL:
        raise NotReady(f"backup {ref.name} is {new.phase.value}", POLL_SECONDS)
    _count(deps.metrics, new, reply.engine or engine, reply.method.value)
    return new


def is_ring(source: Parsed[InstanceSpec]) -> bool:
    """A DatabaseCluster of an engine without a primary: its backup is one snapshot per node (ring.py)."""
    return (
        isinstance(source.spec, ClusterSpec)
        and REGISTRY[source.spec.datastore.type].ha_mode is HAMode.NO_PRIMARY
    )


async def _ring_backup(
    deps: Deps,
    parsed: Parsed[BackupSpec],
    source: Parsed[InstanceSpec],
    request: BackupRequest,
    previous: BackupStatus,
    now: str,
    logger: Logger,
) -> BackupStatus:
    """Every node's backup asked for (or polled) in member order; the status of the whole (ring.py)."""
    assert isinstance(source.spec, ClusterSpec)
    engine = source.spec.datastore.type.value
    try:
        members = await every_member(deps, source, source.spec.replicas)
        replies = []
        for number, member in enumerate(members):
            node = request.model_copy(update={"id": ring.node_backup_id(request.id, number)})
            replies.append(await _ask_agent(deps, member, node))
    except Refused as exc:
        new = failed(str(exc), previous, parsed.ref.generation, now)
        await _write(deps, parsed, previous, new, logger)
        deps.metrics.backup_failures.labels(engine, request.method.value).inc()
        return new
    pods = [m.pod for m in members]
    whole = ring.combined(pods, replies)
    new = from_reply(whole, previous, parsed.ref.generation, now).model_copy(
        update={"nodes": [ring.node_status(pod, r) for pod, r in zip(pods, replies, strict=True)]}
    )
    await _write(deps, parsed, previous, new, logger)
    if new.phase not in FINAL:
        raise NotReady(f"backup {parsed.ref.name} is {new.phase.value} on {len(members)} nodes", POLL_SECONDS)
    _count(deps.metrics, new, engine, request.method.value)
    return new


def _count(metrics: OperatorMetrics, ended: BackupStatus, engine: str, method: str) -> None:
    """The backup metrics of a backup that has just ended (each backup ends once: FINAL is final)."""
    if ended.phase is BackupPhase.FAILED:
        metrics.backup_failures.labels(engine, method).inc()
        return
    metrics.backup_bytes.labels(engine, method).inc(ended.size_bytes or 0)
    if ended.started_at and ended.completed_at:
        took = conditions.parse_time(ended.completed_at) - conditions.parse_time(ended.started_at)
        metrics.backup_seconds.labels(engine, method).observe(max(took.total_seconds(), 0.0))


def _deleting(backup_id: str, target: BackupTarget) -> Callable[[Agent], Awaitable[Ok]]:
    async def call(agent: Agent) -> Ok:
        return await agent.delete_backup(backup_id, target)

    return call


async def delete_data(parsed: Parsed[BackupSpec], raw_status: object, deps: Deps, logger: Logger) -> bool:
    """Apply deletionPolicy: Delete removes the stored backup through a member's agent. True if removed.

    The data is kept (with a warning) when the source is gone: nothing can reach the storage any more.
    """
    status = parse_status(raw_status)
    if parsed.spec.deletion_policy is not DeletionPolicy.DELETE:
        logger.info("deletionPolicy=Retain: keeping the stored backup %s", status.location)
        return False
    if status.started_at is None and status.location is None:
        return False  # never started: nothing was stored
    ref = parsed.ref
    try:
        source = await load_source(deps, ref.namespace, parsed.spec)
        target = await resolve_target(
            deps.kube, ref.namespace, backup_storage(parsed.spec, source.spec), backup_claim(source.spec)
        )
    except (Refused, StorageProblem) as exc:
        logger.warning("Keeping the stored backup %s: %s", status.location, exc)
        return False
    member = await find_member(deps, source)
    ids = [n.id for n in status.nodes] or [ref.uid]  # a ring's backup: every node's snapshot
    try:
        async with deps.members.agents(member.token) as agents:
            for stored in ids:
                await agents.call(member.pod, member.url, _deleting(stored, target))
    except AgentUnreachable as exc:
        raise NotReady(str(exc), 15) from exc
    except AgentCallError as exc:
        raise NotReady(f"{member.pod}: deleting backup {ref.uid} failed: {exc.reason}", 15) from exc
    logger.info("deletionPolicy=Delete: removed the stored backup %s", status.location)
    return True
