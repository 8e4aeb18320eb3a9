"""``spec.restoreFrom``: check the DatabaseBackup before anything is created, then hand the init container
its RestoreRequest.

Called by the Validate phase for a NEW resource only (no StatefulSet yet: restoreFrom applies at creation).
Any problem -> InvalidSpec naming it (run.reconcile writes Failed/Invalid and a Warning Event, and no
child is created). When the backup is usable, the RestoreRequest (target with credentials, engine, major,
data dir) is written to the restore Secret that render mounts into the init container
(``kubetrove-agent restore --request-file``) and the agent sidecar (``--restore-request``); the agent
verifies every checksum again before touching data. A physical backup is restored by the init container
before the engine starts; a logical one is loaded by the agent into the running engine, which stays out
of readiness until then (agent/backup/restore_gate.py). A DatabaseCluster refuses a logical backup (not
supported yet): only its primary may load it (a load on every member would give each its own GTID/LSN
history), and its replicas would have to stay out of the Services until replication has carried the
whole load to them, which a member's agent cannot know on its own.

Credentials: a physical backup holds the engine's own accounts, so the restored data keeps the SOURCE's
admin password (MariaDB's root, PostgreSQL's postgres). The new resource's credentials Secret is therefore
created as a copy of the source's (``<source>-credentials``, same namespace) before the Credentials phase
would generate fresh values that open nothing; a credentials Secret that already exists (the user's) is
used as it is. Neither there -> refused, naming both Secrets. The spec's users are applied afterwards as
for any instance (their passwords are the new resource's).
"""

from __future__ import annotations

import base64
import contextlib
import re
from dataclasses import dataclass

from kubetrove.agent.protocol import BackupTarget, RestoreRequest
from kubetrove.api.backup import BackupPhase, BackupSpec
from kubetrove.api.common import Engine
from kubetrove.api.resources import BACKUP, Parsed, parse_body
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import HAMode
from kubetrove.datastores.registry import REGISTRY
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import CUSTOM, SECRET
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.backup.lifecycle import Refused, load_source, parse_status
from kubetrove.reconcile.backup.target import StorageProblem, backup_storage, resolve_target
from kubetrove.reconcile.context import Context, Deps
from kubetrove.reconcile.errors import InvalidSpec, NotReady
from kubetrove.render import labels, names
from kubetrove.render.agent_sidecar import backup_claim

FIELD = "spec.restoreFrom.backup"


@dataclass(frozen=True)
class RestoreProblem:
    """Why a restore is refused (the shape of ``reconcile.errors.Problem``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def catalog_version(engine: Engine, version: str) -> str | None:
    """The catalog key a running engine's version belongs to ("10.11.16-MariaDB" -> "10.11"), or None.

    Catalog keys are what the agent calls the major (``methods.major``: "16" for PostgreSQL, "10.11"
    for MariaDB), so the key is also the ``major`` of the RestoreRequest.
    """
    keys = [k for k in REGISTRY[engine].versions if re.match(rf"{re.escape(k)}(?![0-9])", version)]
    return max(keys, key=len) if keys else None


def check_backup(name: str, backup: Obj | None, spec: InstanceSpec) -> list[RestoreProblem]:
    """Every reason the DatabaseBackup ``backup`` cannot seed a new resource of ``spec`` (pure)."""
    if backup is None:
        return [RestoreProblem(FIELD, f"DatabaseBackup {name} does not exist")]
    status = parse_status(backup.get("status"))
    if status.phase is not BackupPhase.COMPLETED:
        detail = f" ({status.error})" if status.error else ""
        return [
            RestoreProblem(FIELD, f"DatabaseBackup {name} is {status.phase.value}, not Completed{detail}")
        ]
    problems = []
    engine = spec.datastore.type
    if status.engine != engine.value:
        problems.append(
            RestoreProblem(FIELD, f"DatabaseBackup {name} is of {status.engine}, this is {engine.value}")
        )
    else:
        versions = REGISTRY[engine].versions
        key = catalog_version(engine, status.engine_version or "")
        theirs = versions[key].major if key else status.engine_version
        ours = versions[spec.datastore.version].major
        if theirs != ours:
            problems.append(
                RestoreProblem(
                    FIELD,
                    f"DatabaseBackup {name} is of {engine.value} {theirs} ({status.engine_version}), this is"
                    f" {engine.value} {ours}: restore into the same major version, then upgrade",
                )
            )
    if isinstance(spec, ClusterSpec) and REGISTRY[engine].ha_mode is HAMode.NO_PRIMARY:
        problems.append(
            RestoreProblem(
                FIELD,
                f"a {engine.value} DatabaseCluster cannot be restored from DatabaseBackup {name}: a ring"
                " member's snapshot holds only that node's token ranges, and every member would restore"
                " the same one; restore it into a DatabaseInstance (docs/operations.md, Cassandra)",
            )
        )
    elif isinstance(spec, ClusterSpec) and (status.method or "").startswith("logical"):
        problems.append(
            RestoreProblem(
                FIELD,
                f"DatabaseBackup {name} is a logical backup ({status.method}): a DatabaseCluster restores"
                " physical backups only (every member must start from the same data); restore it into a"
                " DatabaseInstance, or use a physical backup",
            )
        )
    return problems


async def _target(deps: Deps, namespace: str, backup: Parsed[BackupSpec], new: InstanceSpec) -> BackupTarget:
    """The backup's storage: its own, else its source's, else the new resource's ``spec.backup.storage``."""
    storage = backup.spec.storage
    if storage is None:
        # The source may be long gone: the new resource may name the same storage.
        with contextlib.suppress(Refused):
            storage = backup_storage(backup.spec, (await load_source(deps, namespace, backup.spec)).spec)
    if storage is None and new.backup is not None:
        storage = new.backup.storage
    return await resolve_target(deps.kube, namespace, storage, backup_claim(new))


def restore_request(backup_id: str, target: BackupTarget, spec: InstanceSpec) -> RestoreRequest:
    """What the init container restores: the engine's data directory below the volume."""
    container = REGISTRY[spec.datastore.type].container(spec.datastore.version)
    # Where the engine reads its data: the mount itself (MySQL/MariaDB) or PGDATA below it. The agent stages
    # inside this directory, so either works (agent/backup/restore.py).
    data_dir = container.env.get("PGDATA", container.data_dir)
    return RestoreRequest(
        backup_id=backup_id,
        source=target,
        engine=spec.datastore.type.value,
        major=spec.datastore.version,  # a catalog key is the agent's major (see catalog_version)
        data_dir=data_dir,
        first_member_only=isinstance(spec, ClusterSpec)
        and REGISTRY[spec.datastore.type].restore_first_member_only,
    )


async def _copy_credentials(ctx: Context, backup: Parsed[BackupSpec]) -> None:
    """Create the new resource's credentials Secret from the source's (see the module docstring)."""
    kube, ours = ctx.deps.kube, ctx.names.credentials_secret
    if await kube.get(SECRET, ctx.namespace, ours) is not None:
        return  # the user's own, or copied by an earlier reconcile: never overwritten
    theirs = names.ChildNames(backup.spec.source.name).credentials_secret
    source = await kube.get(SECRET, ctx.namespace, theirs)
    if source is None:
        raise InvalidSpec([RestoreProblem(FIELD, (
            f"DatabaseBackup {backup.ref.name}: the restored data keeps the admin password of its source,"
            f" but Secret {theirs} is gone; create Secret {ours} with that password (same keys) to restore"
        ))])  # fmt: skip
    keys = set(REGISTRY[ctx.spec.datastore.type].container(ctx.spec.datastore.version).secret_env.values())
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": labels.metadata(ctx.parsed.ref, ctx.spec.datastore.type, ours),
        "type": "Opaque",
        "data": {k: v for k, v in sorted((source.get("data") or {}).items()) if k in keys},
    }
    try:
        await kube.create(secret)
    except Conflict:
        raise NotReady(f"Secret {ours} appeared meanwhile; retrying", 1) from None
    ctx.logger.info("Created Secret %s from %s: the restored data keeps the source's passwords", ours, theirs)


async def prepare_restore(ctx: Context) -> None:
    """Validate hook: for a new resource with restoreFrom, check the backup and write the restore Secret."""
    spec = ctx.spec
    if spec.restore_from is None or ctx.live_statefulset is not None:
        return  # restoreFrom only applies at creation
    name = spec.restore_from.backup
    body = await ctx.deps.kube.get(CUSTOM[BACKUP.kind], ctx.namespace, name)
    problems = check_backup(name, body, spec)
    if problems:
        raise InvalidSpec(problems)
    assert body is not None
    backup = parse_body(BACKUP, body, BackupSpec)
    try:
        target = await _target(ctx.deps, ctx.namespace, backup, spec)
    except StorageProblem as exc:
        raise InvalidSpec([RestoreProblem(FIELD, f"DatabaseBackup {name}: {exc}")]) from exc
    await _copy_credentials(ctx, backup)
    request = restore_request(backup.ref.uid, target, spec)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": labels.metadata(ctx.parsed.ref, spec.datastore.type, ctx.names.restore_secret),
        "type": "Opaque",
        "data": {names.RESTORE_REQUEST_KEY: base64.b64encode(request.model_dump_json().encode()).decode()},
    }
    await ctx.deps.kube.apply(secret)
