"""Backup routes: POST /v1/backups starts (or finds) a backup, GET /v1/backups/{id} reports its progress.

DELETE /v1/backups/{id} (body: the BackupTarget) removes the stored backup, manifest first (deletionPolicy
Delete); deleting one that is already gone succeeds.

POST is idempotent per id: a repeat (an operator restarted mid-backup) returns the running or finished
backup (200) instead of starting a second one (202). A backup this agent does not know but whose manifest
is in the target is reported Completed. A route group of ``app.make_app``; on shutdown every running tool
is killed and its upload aborted, so nothing partial remains.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from kubetrove.agent.backup.runner import BackupRegistry, Source
from kubetrove.agent.backup.storage import StorageError
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.base import NotFound
from kubetrove.agent.engines.plans import MethodUnsupported
from kubetrove.agent.http import CONTEXT, error_response, remember_secret, reply
from kubetrove.agent.protocol import BackupPhase, BackupRequest, BackupTarget, ErrorCode, Ok, Paths

BACKUPS = web.AppKey("kubetrove_backups", BackupRegistry)


async def handle_post_backups(request: web.Request) -> web.Response:
    """Start a backup to the body's target; 202 when started now, 200 when it already existed."""
    body = BackupRequest.model_validate_json(await request.read())
    if body.target.s3 is not None and body.target.s3.secret_access_key:
        remember_secret(request, body.target.s3.secret_access_key)
    driver = request.app[CONTEXT].driver
    try:
        request.app[CONTEXT].bundle.methods.check(body.method)
    except MethodUnsupported as exc:
        return error_response(400, ErrorCode.UNSUPPORTED_METHOD, str(exc))
    config = driver.config

    def source() -> Source:
        status = driver.status()
        databases = body.databases if body.databases is not None else driver.list_databases()
        return Source(driver.engine, status.version, config, list(databases), status.position)

    registry = request.app[BACKUPS]
    try:
        store = await asyncio.to_thread(open_store, body.target)  # boto3 client set-up blocks
        job, started = await asyncio.to_thread(registry.start, body, source, store)
    except StorageError as exc:
        # The target is unreachable or refuses us (bucket missing, bad credentials): the operator retries.
        return error_response(502, ErrorCode.STORAGE_ERROR, str(exc))
    return reply(job.reply(), 202 if started else 200)


async def handle_get_backup(request: web.Request) -> web.Response:
    """Progress and result of one backup; 404 if this agent never ran it."""
    job = request.app[BACKUPS].get(request.match_info["id"])
    if job is None:
        raise NotFound(f"no backup {request.match_info['id']!r} on this agent")
    return reply(job.reply())


async def handle_delete_backup(request: web.Request) -> web.Response:
    """Remove a stored backup from the body's target; refused (409) while this agent is still running it."""
    backup_id = request.match_info["id"]
    target = BackupTarget.model_validate_json(await request.read())
    if target.s3 is not None and target.s3.secret_access_key:
        remember_secret(request, target.s3.secret_access_key)
    job = request.app[BACKUPS].get(backup_id)
    if job is not None and job.reply().phase in (BackupPhase.PENDING, BackupPhase.RUNNING):
        return error_response(409, ErrorCode.BACKUP_RUNNING, f"backup {backup_id!r} is still running")
    try:
        store = await asyncio.to_thread(open_store, target)
        await asyncio.to_thread(store.delete, backup_id)
    except StorageError as exc:
        return error_response(502, ErrorCode.STORAGE_ERROR, str(exc))
    return reply(Ok(detail=f"deleted {backup_id}"))


async def _cancel_all(app: web.Application) -> None:
    await asyncio.to_thread(app[BACKUPS].cancel_all)


def add_routes(app: web.Application) -> None:
    """Register the backup routes and the shutdown hook on the agent app."""
    app[BACKUPS] = BackupRegistry()
    app.router.add_post(Paths.BACKUPS, handle_post_backups)
    app.router.add_get(Paths.BACKUP, handle_get_backup)
    app.router.add_delete(Paths.BACKUP, handle_delete_backup)
    app.on_shutdown.append(_cancel_all)
