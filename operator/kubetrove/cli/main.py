"""``kubectl trove`` (the ``kubectl-trove`` entry point): arguments, dispatch, and the ONE place where
errors become a single line on stderr and an exit code (0 ok, 1 refused or failed, 2 bad usage).

kubectl finds plugins by name on PATH (https://kubernetes.io/docs/tasks/extend-kubectl/kubectl-plugins/):
``pip install kubetrove[cli]`` installs ``kubectl-trove``, so ``kubectl trove ...`` works.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from kubetrove.api.common import Engine
from kubetrove.api.resources import BACKUP
from kubetrove.cli import commands, logs, manifests, output, views
from kubetrove.cli.commands import CliError, Ctx
from kubetrove.cli.completion import bash_completion
from kubetrove.k8s import kinds

PROG = "kubectl trove"
ENGINES = tuple(e.value for e in Engine)


def parser() -> argparse.ArgumentParser:
    """Every command and flag (also the source of the shell completion)."""
    top = argparse.ArgumentParser(
        prog=PROG, description="Databases on Kubernetes the Trove way: one interface for every engine."
    )
    top.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    top.add_argument("--context", help="kubeconfig context (default: the current one)")
    top.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help_: str, fmt: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if fmt:
            p.add_argument("-o", "--output", choices=output.FORMATS, default="table", help="output format")
        return p

    p = cmd("list", "list databases (instances and clusters)")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace you may list")
    cmd("get", "one database: members, endpoints, backups, verification, conditions, Events").add_argument(
        "name"
    )

    p = cmd("create", "create a database (an instance, or a cluster with --replicas > 1 or --cluster)")
    p.add_argument("name")
    p.add_argument("--engine", required=True, choices=ENGINES)
    p.add_argument(
        "--version", required=True, help='catalog version, e.g. "10.11" (see: kubectl trove catalog)'
    )
    p.add_argument("--replicas", type=int, help="members of a cluster (1-15)")
    p.add_argument("--cluster", action="store_true", help="a DatabaseCluster even with one member")
    p.add_argument("--storage", help='volume size per member, e.g. "10Gi"')
    p.add_argument("--cpu", help='CPU request, e.g. "500m"')
    p.add_argument("--memory", help='memory request and limit, e.g. "1Gi"')
    p.add_argument("--database", action="append", default=[], help="a database to create (repeatable)")
    p.add_argument(
        "--user", action="append", default=[], help="NAME[:DATABASE[:read|readWrite|admin]] (repeatable)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the resource instead of creating it (GitOps)"
    )

    p = cmd("credentials", "user name, password and endpoints (needs read access to the Secret)")
    p.add_argument("name")
    p.add_argument("--user", help="a user of spec.users (default: the administrator)")

    p = cmd("connect", "the connection URI, or start the engine's client through a port-forward")
    p.add_argument("name")
    p.add_argument("--user", help="a user of spec.users (default: the administrator)")
    p.add_argument("--database", help="database to connect to")
    p.add_argument("--client", action="store_true", help="start the engine's client (psql, mysql, ...)")
    p.add_argument("--local-port", type=int, default=15432, help="local port of the port-forward")

    p = cmd("backup", "take a backup now")
    p.add_argument("name")
    p.add_argument("--backup-name", help="name of the DatabaseBackup (default: NAME-<UTC timestamp>)")
    p.add_argument("--method", choices=("auto", "logical", "physical"), default="auto")
    p.add_argument("--wait", action="store_true", help="wait until it completes or fails")
    p.add_argument("--timeout", type=float, default=1800, help="seconds --wait waits")

    p = cmd("restore", "create a NEW database from a completed backup (the source is never touched)")
    p.add_argument("backup")
    p.add_argument("--to", required=True, help="name of the new instance or cluster")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--instance", action="store_true", help="restore into an instance")
    shape.add_argument("--cluster", action="store_true", help="restore into a cluster")
    p.add_argument("--dry-run", action="store_true", help="print the resource instead of creating it")

    p = cmd("switchover", "make another member the primary (planned, lossless)")
    p.add_argument("name")
    p.add_argument("--to", required=True, metavar="POD", help='the member, e.g. "orders-1"')

    p = cmd("verify", "the latest backup verification report (restore test, time to restore)")
    p.add_argument("name")
    p.add_argument("--backup", help="a specific DatabaseBackup")

    p = cmd("logs", "a member's engine log (error or slow), read through the API server as you", fmt=False)
    p.add_argument("name")
    p.add_argument("--member", help="pod name (default: the primary, else ordinal 0)")
    p.add_argument("--tail", type=int, default=100, help="last N lines or entries (default 100; -1: all)")
    p.add_argument("--since", help="only lines newer than this, e.g. 10m, 2h, 1h30m")
    p.add_argument("--previous", action="store_true", help="the previous (crashed) engine container's log")
    p.add_argument("--slow", action="store_true", help="the slow-query log (the agent container's lines)")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines as they are written")

    cmd("catalog", "the engines and versions you may create in the namespace (its DatabasePolicies' view)")
    p = cmd("console", "serve the web console on this machine, acting as you (like kubectl proxy)", fmt=False)
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free port)")
    p = cmd("completion", "print a shell completion script", fmt=False)
    p.add_argument("shell", choices=("bash",))
    return top


def _print(data: Any, fmt: str, columns: Sequence[str] | None = None) -> None:
    print(output.render(data, fmt, columns))


async def _run(args: argparse.Namespace) -> int:
    from kubetrove.k8s.kubeconfig import user_session

    # The CLI's composition root: the one place it reads the environment (kubectl's own rules).
    env = dict(os.environ)
    session = user_session(args.kubeconfig or env.get("KUBECONFIG"), args.context, args.namespace)
    ctx = Ctx(session.kube, session.namespace, getattr(args, "all_namespaces", False))
    fmt = getattr(args, "output", "table")
    try:
        match args.command:
            case "list":
                cols = ("namespace", *views.LIST_COLUMNS) if ctx.all_namespaces else views.LIST_COLUMNS
                _print(await commands.list_databases(ctx), fmt, cols)
            case "get":
                _print(await commands.get_database(ctx, args.name), fmt)
            case "create":
                created = await commands.create(ctx, _create_request(args, ctx.namespace), args.dry_run)
                if args.dry_run:
                    _print(created, "yaml" if fmt == "table" else fmt)
                    return 0
                _done(f"{created['kind']}/{args.name} created in {ctx.namespace}", created, fmt)
            case "credentials":
                _print(await commands.credentials(ctx, args.name, args.user), fmt)
            case "connect":
                conn = await commands.connection(ctx, args.name, args.user, args.database)
                if args.client:
                    return commands.run_client(conn, "kubectl", ctx.namespace, args.local_port, env)
                if fmt == "table":  # the URI alone, to paste or to use in $(...)
                    print(conn.uri or f"{conn.host}:{conn.port} (no URI form: {conn.client.program})")
                else:
                    _print(conn.shown(), fmt)
            case "backup":
                made = await commands.backup_now(ctx, args.name, args.backup_name, args.method)
                if args.wait:
                    made = await commands.wait_phase(
                        ctx, kinds.CUSTOM[BACKUP.kind], made["metadata"]["name"],
                        ("Completed", "Failed"), args.timeout,
                    )  # fmt: skip
                _done(f"DatabaseBackup/{made['metadata']['name']} {_phase(made, 'created')}", made, fmt)
                return 1 if _phase(made, "") == "Failed" else 0
            case "restore":
                cluster = True if args.cluster else False if args.instance else None
                made = await commands.restore(ctx, args.backup, args.to, cluster, args.dry_run)
                if args.dry_run:
                    _print(made, "yaml" if fmt == "table" else fmt)
                    return 0
                _done(f"{made['kind']}/{args.to} created from DatabaseBackup/{args.backup}", made, fmt)
            case "switchover":
                made = await commands.switchover(ctx, args.name, args.to)
                _done(f"switchover of {args.name} to {args.to} requested (status.primary follows)", made, fmt)
            case "verify":
                report = await commands.verify_report(ctx, args.name, args.backup)
                _print(report, fmt)
                return 0 if report["phase"] == "Passed" else 1
            case "logs":
                tail = None if args.tail < 0 else args.tail
                if args.follow:
                    if args.previous:
                        raise CliError(
                            "--follow and --previous: a container that ended has nothing to follow"
                        )
                    lines = logs.follow_engine_logs(ctx, args.name, args.member, tail, args.since, args.slow)
                    async for line in lines:
                        print(line, flush=True)
                    return 0
                text = await logs.engine_logs(
                    ctx, args.name, args.member, tail, args.since, args.previous, args.slow
                )
                sys.stdout.write(text)
            case "catalog":
                rows = await commands.namespace_catalog(ctx)
                _print(rows, fmt, ("engine", "version", "tier", "image", "default", "policies"))
            case "console":
                from kubetrove.console import app as console  # aiohttp only for this command

                server = console.Console(session.kube, session.namespace, session.context)
                await console.serve(server, args.address, args.port, _announce_console(session, args.address))
    finally:
        session.kube.close()
    return 0


def _announce_console(session: Any, address: str) -> Any:
    def announce(url: str) -> None:
        print(f"kubetrove console for context {session.context!r}, acting as you (Ctrl-C stops it):")
        print(url, flush=True)  # alone on its line: the token in it is the only way in
        if address not in ("127.0.0.1", "::1", "localhost"):
            print(
                f"warning: listening on {address}: whoever reaches it with this URL acts as you", flush=True
            )

    return announce


def _phase(obj: Any, default: str) -> str:
    return str((obj.get("status") or {}).get("phase") or default)


def _done(line: str, obj: Any, fmt: str) -> None:
    """A one-line confirmation, or the object itself for -o json|yaml."""
    print(line) if fmt == "table" else _print(obj, fmt)


def _create_request(args: argparse.Namespace, namespace: str) -> manifests.CreateRequest:
    try:
        users = tuple(manifests.parse_user(u) for u in args.user)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return manifests.CreateRequest(
        name=args.name, namespace=namespace, engine=args.engine, version=args.version,
        replicas=args.replicas, cluster=args.cluster, storage=args.storage, cpu=args.cpu,
        memory=args.memory, databases=tuple(args.database), users=users,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr."""
    top = parser()
    args = top.parse_args(argv)  # exits 2 with argparse's usage line on bad flags
    if args.command == "completion":
        print(bash_completion(top))
        return 0
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:  # Ctrl-C ends `console` (and any wait): no traceback
        return 130
    except CliError as exc:
        return _fail(str(exc))
    except Exception as exc:
        return _fail(_describe(exc))


def _describe(exc: Exception) -> str:
    from kubetrove.k8s.errors import ApiError
    from kubetrove.k8s.kubeconfig import KubeconfigError

    if isinstance(exc, ApiError):
        if exc.status == 403:
            return f"forbidden: {exc.message or exc.reason} (your RBAC does not allow this)"
        return exc.message or str(exc)
    if isinstance(exc, KubeconfigError):
        return str(exc)
    if isinstance(exc, ModuleNotFoundError):
        return f"{exc.name} is missing: pip install 'kubetrove[cli]'"
    if isinstance(exc, OSError):
        return f"cannot reach the API server: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
