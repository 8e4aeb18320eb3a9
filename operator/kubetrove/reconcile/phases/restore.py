"""Restore: a new resource with ``spec.restoreFrom`` gets its backup checked and handed to the init container.

Runs after Validate, for a NEW resource only (no StatefulSet yet: restoreFrom applies at creation). The
rules are in reconcile/backup/restore.py (what makes a backup usable, the RestoreRequest); this phase does
the I/O: read the DatabaseBackup, resolve its storage, copy the source's credentials Secret, write the
restore Secret. Any problem -> InvalidSpec naming it (run.reconcile writes Failed/Invalid and a Warning
Event, and no child is created).
"""

from __future__ import annotations

import base64
import contextlib

from kubetrove.agent.protocol import BackupTarget
from kubetrove.api.backup import BackupSpec
from kubetrove.api.resources import BACKUP, Parsed, parse_body
from kubetrove.api.specs import InstanceSpec
from kubetrove.datastores.registry import REGISTRY
from kubetrove.k8s.errors import Conflict
from kubetrove.k8s.kinds import CUSTOM, SECRET
from kubetrove.reconcile.backup.lifecycle import Refused, load_source, parse_status
from kubetrove.reconcile.backup.restore import FIELD, RestoreProblem, check_backup, restore_request
from kubetrove.reconcile.backup.target import StorageProblem, backup_storage, resolve_target
from kubetrove.reconcile.context import Context, Deps
from kubetrove.reconcile.errors import InvalidSpec, NotReady
from kubetrove.render import labels, names
from kubetrove.render.agent_sidecar import backup_claim


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
    keys = set(REGISTRY[ctx.spec.datastore.type].container(ctx.spec.datastore.version).credential_keys)
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


async def restore(ctx: Context) -> None:
    """The Restore phase: with restoreFrom on a new resource, check the backup, write the restore Secret."""
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
    nodes = parse_status(body.get("status")).nodes  # a ring's backup: one per member (check_backup)
    request = restore_request(backup.ref.uid, target, spec, [n.id for n in nodes])
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": labels.metadata(ctx.parsed.ref, spec.datastore.type, ctx.names.restore_secret),
        "type": "Opaque",
        "data": {names.RESTORE_REQUEST_KEY: base64.b64encode(request.model_dump_json().encode()).decode()},
    }
    await ctx.deps.kube.apply(secret)
