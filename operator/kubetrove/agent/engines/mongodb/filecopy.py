"""MongoDB's physical backup: lock the member, stream its data files as a tar to stdout, unlock.

The MongoDB manual's "back up by copying the underlying data files": ``fsync`` with ``lock: true`` flushes
every pending write to the data files (a WiredTiger checkpoint) and blocks writes until ``fsyncUnlock``,
so the files copied meanwhile are one consistent state
(https://www.mongodb.com/docs/manual/reference/command/fsync/,
https://www.mongodb.com/docs/manual/core/backups/#back-up-by-copying-underlying-data-files). Reads go on.
The backup runner (``agent/backup/runner.py``) runs this module as the plan's one step and pipes stdout
into the store; the operator backs up a secondary where the set has one, so the primary keeps writing
(a locked secondary only pauses applying the oplog and catches up after).

``python -m kubetrove.agent.engines.mongodb.filecopy stream CONN`` prints ``kubetrove-position <t>:<i>``
(the member's applied optime under the lock, a replica-set member only) on stderr, writes the tar, and
unlocks in every case it lives to see; ``... unlock CONN`` is the plan's ``after`` step, for the case it
does not (killed): it unlocks only while locked, so running it after a clean stream is harmless.
``CONN`` is a JSON file (0600, in the runner's private work dir) with host, port, user and password.

Left out of the tar: ``mongod.lock`` and ``WiredTiger.lock`` (held by the running mongod; a restored copy
must not look owned), ``diagnostic.data`` (FTDC metrics of the source, not data), and, at any depth,
WiredTiger's ``WiredTigerPreplog.*`` and ``WiredTigerTmplog.*`` files: log files its log thread
pre-allocates (zero-filled, no record in them yet) and renames into the next ``WiredTigerLog.*`` when it
needs one. The fsync lock blocks client writes, not that thread, so such a file may vanish between
listing the journal directory and reading it (seen on a real pod: the whole backup failed on it), and a
restored mongod needs none of them (it pre-allocates its own).
http://source.wiredtiger.com/develop/arch-logging.html
"""

from __future__ import annotations

import json
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kubetrove.agent.engines.mongodb.tls import tls_options

POSITION_PREFIX = "kubetrove-position"
SKIPPED = frozenset({"mongod.lock", "WiredTiger.lock", "diagnostic.data"})  # in the data directory itself
TRANSIENT = ("WiredTigerPreplog.", "WiredTigerTmplog.")  # name prefixes, at any depth


def _client(conn_file: str) -> Any:
    from pymongo import MongoClient

    conn = json.loads(Path(conn_file).read_text())
    return MongoClient(
        conn["host"],
        int(conn["port"]),
        directConnection=True,
        authSource="admin",
        username=conn.get("user") or None,
        password=conn.get("password") or None,
        serverSelectionTimeoutMS=10_000,
        appname="kubetrove-backup",
        # spec.tls: over TLS, unverified (the pod's own loopback, as the driver's connection).
        **tls_options(bool(conn.get("tls"))),
    )


def db_path(admin: Any) -> Path:
    """The member's data directory, as mongod itself reports it."""
    parsed = admin.command("getCmdLineOpts")["parsed"]
    return Path(parsed.get("storage", {}).get("dbPath") or "/data/db")


def applied_position(admin: Any) -> str | None:
    """This member's applied optime ``<t>:<i>``, or None for a standalone."""
    if not admin.command("hello").get("setName"):
        return None
    ts = admin.command("replSetGetStatus")["optimes"]["appliedOpTime"]["ts"]
    return f"{ts.time}:{ts.inc}"


def members(data: Path, below: Path | None = None) -> Iterator[Path]:
    """Every path under ``data`` that goes into the tar, each directory before its contents, sorted:
    everything but ``SKIPPED`` (top level) and ``TRANSIENT`` (any depth)."""
    here = data if below is None else below
    for entry in sorted(here.iterdir()):
        if entry.name.startswith(TRANSIENT) or (below is None and entry.name in SKIPPED):
            continue
        yield entry
        if entry.is_dir() and not entry.is_symlink():
            yield from members(data, entry)


def write_tar(data: Path, out: Any) -> None:
    """``members(data)``, streamed (no seeking) to ``out`` with paths relative to ``data``."""
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for entry in members(data):
            tar.add(entry, arcname=str(entry.relative_to(data)), recursive=False)


def lock(admin: Any, patience: float = 60.0) -> None:
    """``fsync {lock: true}``, waiting while the member cannot take a checkpoint yet.

    Right after its initial sync a member's stable timestamp is behind its initial data timestamp and
    fsync answers "Cannot take checkpoints when the stable timestamp is less than the initial data
    timestamp" (code 125; seen on 6.0.5 seconds after a set formed). That passes with the next majority
    commit (the primary writes a no-op at least every 10 s), so it is asked again for ``patience`` s.
    """
    from pymongo.errors import OperationFailure

    deadline = time.monotonic() + patience
    while True:
        try:
            admin.command("fsync", lock=True)
            return
        except OperationFailure as exc:
            if "stable timestamp" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1)


def stream(conn_file: str) -> None:
    client = _client(conn_file)
    admin = client.admin
    try:
        data = db_path(admin)
        lock(admin)
        try:
            position = applied_position(admin)
            if position is not None:
                print(f"{POSITION_PREFIX} {position}", file=sys.stderr, flush=True)
            write_tar(data, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        finally:
            admin.command("fsyncUnlock")
    finally:
        client.close()


def unlock(conn_file: str) -> None:
    client = _client(conn_file)
    try:
        # currentOp reports ``fsyncLock: true`` while a lock is held (any count).
        while client.admin.command("currentOp").get("fsyncLock"):
            client.admin.command("fsyncUnlock")
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("stream", "unlock"):
        print("usage: python -m kubetrove.agent.engines.mongodb.filecopy stream|unlock CONN", file=sys.stderr)
        return 2
    (stream if args[0] == "stream" else unlock)(args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
