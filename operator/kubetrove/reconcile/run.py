"""Per-resource orchestration: an ordered list of named, idempotent phases (mariadb-operator's pattern).

Every phase can run any number of times with the same result, so a retry (kopf's TemporaryError
after NotReady), a restart of the operator, or a resume simply runs the list again from the top.

    Validate     the spec against the catalog and the applied spec; on problems: STOP, change nothing
    Restore      spec.restoreFrom on a new resource: check the backup, hand the init container its request
    Credentials  Secrets read, missing values generated and added (never overwritten)
    Render       every manifest from the spec and those values (pure)
    Replacements a ring's members seen down get replace_address_first_boot in the ConfigMap
    Decommission a ring that shrinks: asked first (a refusal keeps the ring's size and completes the pass),
                 then each leaving node decommissioned through its agent
    Apply        server-side apply of the children (StatefulSet last)
    Storage      grow PVCs to the requested size
    Rollout      OnDelete clusters: delete the next outdated pod (replicas first, primary last)
    Status       phase, conditions, endpoints, observedGeneration computed from what is observed
    ScaleDown    a ring's Refused ScaleDown condition settled once it runs spec.replicas nodes
    TLSReady     spec.tls: the TLSReady condition (what the engine serves, the certificate's expiry)
    Restored     the Restored condition from the members' restore init containers and agents
    Parameters   push changed dynamic parameters through the agents
    Users        spec.databases and spec.users through the agent of the member taking writes

The status is written ONCE, by the runner, after the last phase that ran: also when an agent phase
raises NotReady (an unreachable agent must not keep the status stale), and with what the agent phases
added (UsersReady). No phase writes it; a refused spec is written by ``report_invalid`` instead.
``refresh`` is the level-triggered half (kopf's on.* handlers are edge-triggered): Validate without
side effects, then Replacements, Rollout, Volume (a DatabaseInstance's member through its agent:
status.members, StorageLow, autogrow; phases/volume.py), Status, ScaleDown (a stale Refused settled)
and Restored only; or, for a ring whose scale-down was refused, every phase above (it asks again).
Volume is not a reconcile phase: a spec change or the operator's restart calls no agent
for it. ``observe_volume`` is the Volume phase alone: the autogrow timer of an instance with
spec.storage.autogrow (its status timer is too slow to grow a filling disk).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from kubetrove.api.resources import CLUSTER, Parsed
from kubetrove.api.specs import InstanceSpec
from kubetrove.api.status import Phase as ResourcePhase
from kubetrove.api.status import ResourceStatus
from kubetrove.k8s import events, ops
from kubetrove.k8s.kinds import PVC, SECRET
from kubetrove.k8s.port import Obj
from kubetrove.reconcile import status as st
from kubetrove.reconcile.context import Context, Deps, Logger
from kubetrove.reconcile.errors import InvalidSpec
from kubetrove.reconcile.phases.apply import apply
from kubetrove.reconcile.phases.credentials import credentials
from kubetrove.reconcile.phases.parameters import parameters
from kubetrove.reconcile.phases.render import render
from kubetrove.reconcile.phases.report import parse_status, report, write
from kubetrove.reconcile.phases.restore import restore
from kubetrove.reconcile.phases.restored import restored
from kubetrove.reconcile.phases.ring import decommission, refused_shrink, replacements, scale_down_settled
from kubetrove.reconcile.phases.rollout import rollout
from kubetrove.reconcile.phases.storage import storage
from kubetrove.reconcile.phases.tls import tls_ready
from kubetrove.reconcile.phases.users import users
from kubetrove.reconcile.phases.validate import check, check_expansion, observe, validate
from kubetrove.reconcile.phases.volume import volume, volume_series
from kubetrove.render.names import ChildNames

Phase = Callable[[Context], Awaitable[None]]

PHASES: tuple[tuple[str, Phase], ...] = (
    ("Validate", validate),
    ("Restore", restore),
    ("Credentials", credentials),
    ("Render", render),
    ("Replacements", replacements),
    ("Decommission", decommission),
    ("Apply", apply),
    ("Storage", storage),
    ("Rollout", rollout),
    ("Status", report),
    ("ScaleDown", scale_down_settled),
    ("TLSReady", tls_ready),
    ("Restored", restored),
    ("Parameters", parameters),
    ("Users", users),
)
REFRESH: tuple[tuple[str, Phase], ...] = (
    ("Replacements", replacements),
    ("Rollout", rollout),
    # Volume before Status: when it writes, it reads the stored status first and makes it the previous
    # status, so Status computes from what is stored now, not from the body this refresh started with
    # (a reconcile may have written UsersReady while the agent answered; computed from the older body,
    # the runner's write would put the older conditions back).
    ("Volume", volume),
    ("Status", report),
    ("ScaleDown", scale_down_settled),
    ("Restored", restored),
)


def _context(parsed: Parsed[InstanceSpec], raw_status: Any, deps: Deps, logger: Logger) -> Context:
    return Context(parsed=parsed, deps=deps, logger=logger, previous_status=parse_status(raw_status))


async def report_invalid(ctx: Context, error: InvalidSpec) -> None:
    """Failed/Invalid status and a Warning Event naming every field; no child is touched."""
    message = str(error)
    ctx.logger.warning("Invalid spec: %s", message)
    new = st.invalid(message, ctx.parsed.ref.generation, ctx.previous_status, ctx.deps.clock())
    await write(ctx, new)
    deps = ctx.deps
    await events.post_quietly(
        deps.kube, ctx.parsed.ref, events.EventType.WARNING, "InvalidSpec", message, "Reconcile", ctx.logger,
        deps.reporting_instance,
    )  # fmt: skip


async def reconcile(
    parsed: Parsed[InstanceSpec], raw_status: Any, deps: Deps, logger: Logger
) -> ResourceStatus:
    """Run every phase in order; return the status written. Raises InvalidSpec, NotReady, ApiError."""
    ctx = _context(parsed, raw_status, deps, logger)
    policy = parsed.spec.backup
    forget_backup_series(
        parsed, deps, policy is None or policy.schedule is None, policy is None or not policy.verify
    )
    try:
        await _run(ctx, PHASES)
    except InvalidSpec as exc:
        await report_invalid(ctx, exc)
        raise
    return ctx.status or ResourceStatus()


def forget_backup_series(
    parsed: Parsed[InstanceSpec], deps: Deps, schedule: bool, verification: bool
) -> None:
    """Drop the owner's series of a backup schedule or a restore verification it no longer has (their timers
    stop with them, so nothing else would: a stale series would keep an alert firing)."""
    ref = parsed.ref
    deps.metrics.forget_owner(ref.namespace, ref.kind.kind, ref.name, schedule, verification)


async def _run(ctx: Context, phases: tuple[tuple[str, Phase], ...]) -> None:
    """Run ``phases`` in order; then write the status once, if the Status phase computed one."""
    try:
        for name, phase in phases:
            ctx.logger.debug("Phase %s", name)
            await phase(ctx)
    finally:
        if ctx.status is not None:
            await write(ctx, ctx.status)


async def refresh(
    parsed: Parsed[InstanceSpec], raw_status: Any, deps: Deps, logger: Logger, statefulset: Obj | None = None
) -> None:
    """Level-triggered upkeep: drive an OnDelete roll and refresh the status from observed state.

    A refused spec keeps its Failed status: the refresh validates first and stops quietly. A StatefulSet
    event passes the StatefulSet it carries (``statefulset``): it is used as observed, not read again.
    """
    ctx = _context(parsed, raw_status, deps, logger)
    ctx.write_precondition = parsed.ref.resource_version or None
    await observe(ctx, statefulset)
    try:
        check(ctx)
        await check_expansion(ctx)
    except InvalidSpec:
        return
    if ctx.live_statefulset is None:
        return  # never applied yet: the create handler is on it
    # A ring's refused scale-down is asked again by the whole reconcile (phases/ring.py, refused_shrink).
    await _run(ctx, PHASES if await refused_shrink(ctx) else REFRESH)


async def observe_volume(parsed: Parsed[InstanceSpec], raw_status: Any, deps: Deps, logger: Logger) -> None:
    """The Volume phase alone (a DatabaseInstance's autogrow timer): nothing on a refused spec."""
    ctx = _context(parsed, raw_status, deps, logger)
    if ctx.previous_status is not None and ctx.previous_status.phase is ResourcePhase.FAILED:
        return
    try:
        check(ctx)
    except InvalidSpec:
        return
    await volume(ctx)


def claim_pattern(name: str) -> re.Pattern[str]:
    """Names of the data PVCs of resource ``name`` (``data-<name>-<ordinal>``)."""
    return re.compile(rf"^data-{re.escape(name)}-[0-9]+$")


def password_secrets(parsed: Parsed[InstanceSpec]) -> list[str]:
    """The Secrets that open the data: engine credentials and the generated user passwords."""
    names = ChildNames(parsed.ref.name)
    users = [names.user_secret(u.name) for u in parsed.spec.users if u.password_secret_ref is None]
    return [names.credentials_secret, *users]


async def delete(parsed: Parsed[InstanceSpec], deps: Deps, logger: Logger) -> list[str]:
    """Deletion policy for volumes (children go by owner references). Returns the PVCs deleted.

    Retain keeps the PVCs AND the password Secrets (orphaned here, before the finalizer goes, so the
    garbage collector leaves them): retained data without its passwords could not be opened.
    """
    forget_backup_series(parsed, deps, schedule=True, verification=True)
    if parsed.ref.kind is not CLUSTER:
        volume_series(deps.metrics, parsed).forget()  # a cluster's go when its loop ends
    if parsed.spec.deletion_policy.volumes.value != "Delete":
        for name in password_secrets(parsed):
            if await ops.orphan(deps.kube, SECRET, parsed.ref.namespace, name, parsed.ref.uid):
                logger.info("Keeping Secret %s with the retained volumes", name)
        logger.info("deletionPolicy.volumes=Retain: keeping the PVCs")
        return []
    pattern = claim_pattern(parsed.ref.name)
    deleted = []
    for pvc in await deps.kube.list(PVC, parsed.ref.namespace):
        name = pvc["metadata"]["name"]
        if pattern.match(name):
            await deps.kube.delete(PVC, parsed.ref.namespace, name)
            deleted.append(name)
    logger.info("deletionPolicy.volumes=Delete: deleted PVCs %s", deleted)
    return deleted
