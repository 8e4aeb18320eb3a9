"""``kubetrove-agent``: read flags/env/files, build the driver from the registry, serve the API.

Every flag has an environment variable (the pod spec sets env; secrets come as mounted FILES, never as
flag values, which would show in ``ps``). ``KUBETROVE_ENGINE_PASSWORD`` exists for local runs only.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from kubetrove.agent import auth, protocol
from kubetrove.agent.app import make_app
from kubetrove.agent.backup.restore import RestoreRefused, for_member
from kubetrove.agent.backup.restore_gate import RestoreGate, engine_not_writable
from kubetrove.agent.engines.base import EngineDriver
from kubetrove.agent.engines.config import EngineConfig
from kubetrove.agent.engines.registry import REGISTRY, make_driver
from kubetrove.agent.logs import Redactor, setup_engine_log_output, setup_logging
from kubetrove.agent.protocol import RestoreRequest

log = logging.getLogger("kubetrove.agent")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"KUBETROVE_{name}", default)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Flags, each defaulting to its KUBETROVE_* environment variable."""
    p = argparse.ArgumentParser(prog="kubetrove-agent", description="kubetrove guest agent")
    p.add_argument(
        "--engine",
        default=_env("ENGINE"),
        choices=sorted(engine.value for engine in REGISTRY),
        help="$KUBETROVE_ENGINE",
    )
    p.add_argument("--engine-host", default=_env("ENGINE_HOST", "127.0.0.1"))
    p.add_argument("--engine-port", type=int, default=_env("ENGINE_PORT"))
    p.add_argument("--engine-user", default=_env("ENGINE_USER", ""))
    p.add_argument("--engine-password-file", default=_env("ENGINE_PASSWORD_FILE"))
    p.add_argument("--engine-database", default=_env("ENGINE_DATABASE"))
    # The engine's data directory (the data volume, mounted read-write here): snapshot-based backups read it.
    p.add_argument("--data-dir", default=_env("DATA_DIR"))
    # A file the agent creates when the member is fenced or made a replica and removes on promotion; the
    # engine container's start command reads it (EngineContainer.demoted_marker, docs/clustering.md).
    p.add_argument("--demoted-marker", default=_env("DEMOTED_MARKER"))
    # A directory the engine writes and the agent reads (an emptyDir both containers mount at this path,
    # EngineContainer.clone_dir): MySQL's physical backup clones the instance into it, then streams it.
    p.add_argument("--clone-dir", default=_env("CLONE_DIR"))
    # spec.restoreFrom: the RestoreRequest JSON (the restore Secret, mounted read-only). The agent loads a
    # logical backup once the engine accepts writes and answers /readyz 503 until the restore is done.
    p.add_argument("--restore-request", default=_env("RESTORE_REQUEST"))
    p.add_argument("--spool-dir", default=_env("SPOOL_DIR", tempfile.gettempdir()))
    p.add_argument("--listen", default=_env("AGENT_LISTEN", "0.0.0.0"))  # noqa: S104 (a pod's sidecar)
    p.add_argument("--port", type=int, default=int(_env("AGENT_PORT", str(protocol.PORT)) or protocol.PORT))
    p.add_argument("--token-file", default=os.environ.get(protocol.TOKEN_FILE_ENV))
    p.add_argument("--tls-cert", default=_env("AGENT_TLS_CERT"))
    p.add_argument("--tls-key", default=_env("AGENT_TLS_KEY"))
    # A CA for client certificates: /v1 then needs one it signed (and the token); probes need none.
    p.add_argument("--tls-client-ca", default=_env("AGENT_TLS_CLIENT_CA"))
    # The engine serves client TLS (spec.tls) from the files in this directory (mounted here too): connect
    # to it, and replicate, over TLS; have it re-read the files when a renewal swaps them in.
    p.add_argument("--engine-tls-dir", default=_env("ENGINE_TLS_DIR"))
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    # Every this many seconds, the engine's new slow-log entries (and its error log, when the engine cannot
    # write it to its own container's log) go to the agent's stdout as JSON lines; 0 = off.
    p.add_argument(
        "--engine-log-interval", type=float, default=float(_env("ENGINE_LOG_INTERVAL", "10") or 10)
    )
    args = p.parse_args(argv)
    if not args.engine:
        p.error("--engine (or KUBETROVE_ENGINE) is required")
    if not args.token_file:
        p.error(
            f"--token-file (or {protocol.TOKEN_FILE_ENV}) is required: the agent never serves without a token"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if args.engine_log_interval < 0:
        p.error("--engine-log-interval: seconds, 0 (off) or more")
    if args.tls_client_ca and not args.tls_cert:
        p.error("--tls-client-ca needs --tls-cert and --tls-key (client certificates are a TLS feature)")
    return args


def engine_password(args: argparse.Namespace) -> str:
    """The engine password from its file, else from $KUBETROVE_ENGINE_PASSWORD, else empty."""
    if args.engine_password_file:
        return Path(args.engine_password_file).read_text().strip()
    return _env("ENGINE_PASSWORD", "") or ""


def restore_gate(args: argparse.Namespace, driver: EngineDriver, config: EngineConfig) -> RestoreGate | None:
    """The background restore of ``--restore-request``, or None without one."""
    if not args.restore_request:
        return None
    request = RestoreRequest.model_validate_json(Path(args.restore_request).read_text())
    with contextlib.suppress(RestoreRefused):  # refused by the init container already: the pod never starts
        request = for_member(request, socket.gethostname())  # a ring member's own backup
    return RestoreGate(request, config, lambda: engine_not_writable(driver), Path(args.spool_dir))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``kubetrove-agent``."""
    if argv is None:
        import sys

        argv = sys.argv[1:]
    if argv and argv[0] == "restore":  # `kubetrove-agent restore ...`: the init container's verified restore
        from kubetrove.agent.backup.restore import main as restore_main

        raise SystemExit(restore_main(argv[1:]))
    args = parse_args(argv)
    redactor = Redactor()
    setup_logging(redactor, args.log_level)
    setup_engine_log_output(redactor)
    token = auth.TokenFile(args.token_file)
    redactor.add(token())
    password = engine_password(args)
    redactor.add(password)
    config = EngineConfig(
        host=args.engine_host,
        port=args.engine_port,
        user=args.engine_user,
        password=password,
        database=args.engine_database,
        tls=bool(args.engine_tls_dir),
        options={
            key: value
            for key, value in (
                ("data_dir", args.data_dir),
                ("demoted_marker", args.demoted_marker),
                ("clone_dir", args.clone_dir),
            )
            if value
        },
    )
    driver = make_driver(args.engine, config)
    tls = auth.ServerTLS(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    engine_tls = auth.EngineTLSFiles(args.engine_tls_dir) if args.engine_tls_dir else None
    app = make_app(
        driver,
        token,
        redactor=redactor,
        restore_gate=restore_gate(args, driver, config),
        tls=tls,
        engine_tls=engine_tls,
        engine_log_interval=args.engine_log_interval,
    )
    log.info(
        "agent starting",
        extra={
            "engine": args.engine,
            "listen": args.listen,
            "port": args.port,
            "tls": tls is not None,
            "client_certificates": tls is not None and tls.verifies_clients,
        },
    )
    context = tls.context if tls is not None else None
    web.run_app(app, host=args.listen, port=args.port, ssl_context=context, access_log=None, print=None)


if __name__ == "__main__":
    main()
