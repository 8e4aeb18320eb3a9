"""POST /v1/verify: on the agent of a throwaway instance restored from a backup, run the engine's
consistency check and collect the same per-table stats the backup recorded (the bundle's ``table_stats``).

The agent reads the backup's manifest from the body's target and replies with both the recorded and the
observed stats plus the check results; the operator compares them (reconcile/backup/verify_plan.py), so
the rule of what counts as "the same" lives in one place. Read-only towards the data (except
``CREATE EXTENSION amcheck`` on PostgreSQL), so a repeat after an operator restart is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from kubetrove.agent.backup.storage import StorageError
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.base import EngineDriver, NotFound, TableChecker
from kubetrove.agent.http import CONTEXT, error_response, remember_secret, reply
from kubetrove.agent.protocol import ErrorCode, Paths, TableCheck, TableStats, VerifyReply, VerifyRequest

NO_CHECK = "none"
ALL_TABLES = "(all tables)"


def check_and_collect(
    driver: EngineDriver,
    checker: TableChecker | None,
    stats: Callable[[list[str]], dict[str, TableStats]],
) -> tuple[str, list[TableCheck], dict[str, TableStats]]:
    """Run the consistency check (where the engine has one), then the stats, over every user database."""
    databases = driver.list_databases()
    tool, checks = checker.check_tables(databases) if checker is not None else (NO_CHECK, [])
    try:
        observed = stats(databases)
    except Exception as exc:  # any client library's error (pymysql, psycopg)
        # A damaged table can make the scan itself fail ("marked as crashed"): that is a finding to
        # report, not an internal error of the agent.
        checks = [*checks, TableCheck(table=ALL_TABLES, ok=False, message=f"reading the rows failed: {exc}")]
        observed = {}
    return tool, checks, observed


async def handle_post_verify(request: web.Request) -> web.Response:
    """Check the restored engine and compare against backup ``backup_id``'s manifest (404 if none)."""
    body = VerifyRequest.model_validate_json(await request.read())
    if body.source.s3 is not None and body.source.s3.secret_access_key:
        remember_secret(request, body.source.s3.secret_access_key)
    ctx = request.app[CONTEXT]
    driver, bundle = ctx.driver, ctx.bundle
    config = driver.config
    try:
        store = await asyncio.to_thread(open_store, body.source)
        manifest = await asyncio.to_thread(store.get_manifest, body.backup_id)
    except StorageError as exc:
        return error_response(502, ErrorCode.STORAGE_ERROR, str(exc))
    if manifest is None:
        raise NotFound(f"no complete backup {body.backup_id!r} in the target (no manifest)")
    # The checks and a full scan of every table: minutes on a big database, so off the event loop.
    tool, checks, observed = await asyncio.to_thread(
        check_and_collect, driver, bundle.table_checker(driver), lambda dbs: bundle.table_stats(config, dbs)
    )
    return reply(
        VerifyReply(
            engine=driver.engine, check_tool=tool, recorded=manifest.tables, observed=observed, checks=checks
        )
    )


def add_routes(app: web.Application) -> None:
    """Register POST /v1/verify on the agent app."""
    app.router.add_post(Paths.VERIFY, handle_post_verify)
