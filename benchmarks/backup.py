"""Backup throughput: a MariaDB dataset streamed by the agent vs the raw tool writing to local disk.

Three ways of taking the same backup of the same dataset, in the same run, interleaved round by round
(the order rotates each round, so a load spike from the other users of the machine lands on all three):

- ``raw_tool_to_local_disk``: the agent's own argv, stdout redirected to a file, then fsynced;
- ``agent_to_minio``: POST /v1/backups on the real agent app with an S3 target (a real MinIO on loopback);
- ``agent_to_directory``: the same with a directory target (what ``spec.backup.storage.pvc`` becomes), on
  the raw tool's disk: it isolates the agent's own overhead from the object server's (MinIO shares the
  same cores).

Medians over ``--rounds`` are the figures; every sample, the load average and the CPU seconds used by the
tool, the agent, mariadbd (the agent's table stats) and MinIO in each sample are kept. Figures are
printed and saved to benchmarks/results/backup.json; nothing is asserted (the goal, a streamed/raw ratio
>= 0.9, is reported, not enforced). The dataset is generated from the Sequence engine.

    .venv/bin/python -m benchmarks.backup [--mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from tests.integration.conftest_backup import CREATED_AT, backup
from tests.integration.servers._proc import free_port
from tests.integration.servers.mariadb import MariaDBServer, start_mariadb
from tests.integration.servers.minio import start_minio
from tests.integration.servers.restored import start_mariadb_on

from kubetrove.agent.app import make_app
from kubetrove.agent.backup import restore as restore_mod
from kubetrove.agent.backup.s3 import S3Store
from kubetrove.agent.backup.targets import open_store
from kubetrove.agent.engines.registry import make_driver, methods_for, table_stats
from kubetrove.agent.protocol import (
    BackupMethod,
    BackupPhase,
    BackupRequest,
    BackupTarget,
    DirectoryTarget,
    RestoreRequest,
)

RESULTS = Path(__file__).parent / "results" / "backup.json"
MiB = 1024 * 1024


def generate(server: MariaDBServer, mib: int) -> dict[str, Any]:
    """A table of ~``mib`` MiB (data + indexes) of random-ish rows; returns rows, size and time."""
    started = time.monotonic()
    server.query("CREATE DATABASE bench")
    server.query(
        "CREATE TABLE bench.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, a CHAR(200), b VARCHAR(255), c DOUBLE)"
        " ENGINE=InnoDB"
    )
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")  # the binlog would double the write cost
            # Batches from the Sequence engine: no temporary table (INSERT ... SELECT from the same
            # table would need one in tmpdir), random-ish content so nothing compresses away.
            batch, done = 250_000, 0
            while _table_bytes(cur) < mib * MiB:
                cur.execute(
                    "INSERT INTO bench.t (a, b, c) SELECT SHA2(RAND(), 256), REPEAT(MD5(seq + %s), 7), RAND()"
                    f" FROM bench.seq_1_to_{batch}",
                    (done,),
                )
                done += batch
                cur.execute("ANALYZE TABLE bench.t")  # refresh data_length for the size check
                cur.fetchall()
            cur.execute("SELECT COUNT(*) FROM bench.t")
            rows = int(cur.fetchone()[0])
            size = _table_bytes(cur)
    finally:
        conn.close()
    return {
        "rows": rows,
        "table_mib": round(size / MiB, 1),
        "generate_s": round(time.monotonic() - started, 1),
    }


def _table_bytes(cur: Any) -> int:
    cur.execute(
        "SELECT data_length + index_length FROM information_schema.tables"
        " WHERE table_schema = 'bench' AND table_name = 't'"
    )
    return int(cur.fetchone()[0])


def raw_tool(server: MariaDBServer, method: BackupMethod, out: Path) -> dict[str, float]:
    """The same argv the agent runs, stdout redirected to a local file (then fsynced: MinIO persists too)."""
    work = Path(tempfile.mkdtemp(prefix="kt-bench-raw-"))
    try:
        plan = methods_for("mariadb").backup(method, server.engine_config(), work, ["bench"], "raw")
        for name, content in plan.files.items():
            (work / name).write_text(content)
        started = time.monotonic()
        with out.open("wb") as f:
            subprocess.run(plan.steps[0].argv, stdout=f, stderr=subprocess.DEVNULL, check=True, cwd=work)
            os.fsync(f.fileno())
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = out.stat().st_size
    out.unlink()
    return {
        "seconds": round(seconds, 2),
        "mib": round(size / MiB, 1),
        "mib_per_s": round(size / MiB / seconds, 1),
    }


async def agent_backup(
    server: MariaDBServer, method: BackupMethod, target: BackupTarget, backup_id: str
) -> dict[str, Any]:
    """POST /v1/backups on the real agent app, poll until Completed; wall time from POST to Completed."""
    token = secrets.token_urlsafe(16)
    runner = web.AppRunner(make_app(make_driver("mariadb", server.engine_config()), token), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        started = time.monotonic()
        reply = await backup(
            f"http://127.0.0.1:{port}",
            token,
            BackupRequest(
                id=backup_id, method=method, target=target, created_at=CREATED_AT, databases=["bench"]
            ),
        )
        seconds = time.monotonic() - started
    finally:
        await runner.cleanup()
    assert reply.phase is BackupPhase.COMPLETED, reply.error
    size = reply.size_bytes or 0
    streaming = reply.throughput_mib_per_s or 0.0  # tool start to the last part stored
    return {
        "seconds_end_to_end": round(seconds, 2),
        "mib": round(size / MiB, 1),
        "mib_per_s_end_to_end": round(size / MiB / seconds, 1),
        "mib_per_s_streaming": streaming,
        # Everything but the stream: POST handling (engine version, manifest lookup, leftover uploads),
        # the table stats, the manifest, and up to one 0.2 s poll of the benchmark's client.
        "seconds_outside_streaming": round(seconds - size / MiB / streaming, 2) if streaming else None,
    }


KINDS = ("raw_tool_to_local_disk", "agent_to_minio", "agent_to_directory")


def median_of(samples: list[dict[str, Any]], key: str) -> float:
    """The median of one figure over the samples that have it."""
    return round(float(statistics.median(s[key] for s in samples if s.get(key) is not None)), 2)


def summarize(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Medians per kind and the ratios against the raw tool."""
    raw = median_of(samples["raw_tool_to_local_disk"], "mib_per_s")
    out: dict[str, Any] = {"raw_tool_to_local_disk": {"mib_per_s_median": raw}}
    for kind in KINDS[1:]:
        streaming = median_of(samples[kind], "mib_per_s_streaming")
        end_to_end = median_of(samples[kind], "mib_per_s_end_to_end")
        # Each agent sample against the raw sample of the same round: steadier than a ratio of
        # medians when the machine's other users come and go during the run.
        paired = [
            a["mib_per_s_streaming"] / r["mib_per_s"]
            for a, r in zip(samples[kind], samples["raw_tool_to_local_disk"], strict=True)
        ]
        out[kind] = {
            "mib_per_s_streaming_median": streaming,
            "mib_per_s_end_to_end_median": end_to_end,
            "seconds_end_to_end_median": median_of(samples[kind], "seconds_end_to_end"),
            "seconds_outside_streaming_median": median_of(samples[kind], "seconds_outside_streaming"),
            "ratio_streaming": round(streaming / raw, 3),
            "ratio_end_to_end": round(end_to_end / raw, 3),
            "ratio_streaming_same_round_median": round(statistics.median(paired), 3),
        }
    for kind in KINDS:
        out[kind]["cpu_s_median"] = {
            name: round(statistics.median(s["cpu_s"][name] for s in samples[kind]), 2)
            for name in samples[kind][0]["cpu_s"]
        }
        out[kind]["mib"] = samples[kind][0]["mib"]
        out[kind]["samples"] = samples[kind]
    return out


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_now(servers: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: the tool (this process's waited-for children), the agent (this process:
    the agent app runs in it), and each long-running server by pid."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "tool": kids.ru_utime + kids.ru_stime,
        "agent": own.ru_utime + own.ru_stime,
        **{name: process_cpu_s(pid) for name, pid in servers.items()},
    }


def one_sample(
    server: MariaDBServer,
    method: BackupMethod,
    kind: str,
    targets: dict[str, BackupTarget],
    tag: str,
    base: Path,
    servers: dict[str, int],
) -> dict[str, Any]:
    """One backup of ``kind`` with the CPU seconds each party used; the stored copy is deleted again."""
    load = os.getloadavg()[0]
    before = cpu_now(servers)
    if kind == "raw_tool_to_local_disk":
        sample: dict[str, Any] = raw_tool(server, method, base / f"raw-{method}")
    else:
        backup_id = f"bench-{method}-{tag}"
        sample = asyncio.run(agent_backup(server, method, targets[kind], backup_id))
        open_store(targets[kind]).delete(backup_id)
    after = cpu_now(servers)
    cpu = {name: round(after[name] - before[name], 2) for name in before}
    return {**sample, "load_average_1m": round(load, 2), "cpu_s": cpu}


def main() -> None:
    """Run the benchmark and save its figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=int, default=1024, help="dataset size (table data + indexes)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (medians are reported)")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kt-bench-"))
    server = start_mariadb(base / "src")
    minio = start_minio()
    targets = {
        "agent_to_minio": minio.target("bench"),
        "agent_to_directory": BackupTarget(directory=DirectoryTarget(path=str(base / "pvc"))),
    }
    s3 = targets["agent_to_minio"].s3
    assert s3 is not None
    probe = S3Store(s3)
    results: dict[str, Any] = {
        "parameters": {
            "dataset_mib_goal": args.mib,
            "rounds": args.rounds,
            "order": "interleaved: each round runs every method and target, the order rotating",
            "engine": "mariadb 10.11",
            "cores": os.cpu_count(),
            "s3_part_mib": probe.part_size // MiB,
            "s3_upload_workers": probe.workers,
            "directory_target": "the raw tool's filesystem (fsynced, renamed)",
            "object_server": "MinIO, single drive, on loopback, on the same cores",
            "table_stats": "taken by the agent while the tool streams (after its first MiB)",
        },
        "load_average": {"start": [round(x, 2) for x in os.getloadavg()]},
    }
    servers = {"mariadbd": server.proc.pid, "minio": minio.proc.pid}
    try:
        results["dataset"] = generate(server, args.mib)
        print("dataset:", results["dataset"], flush=True)
        samples: dict[BackupMethod, dict[str, list[dict[str, Any]]]] = {
            m: {k: [] for k in KINDS} for m in BackupMethod
        }
        stats_s: list[float] = []
        for rnd in range(args.rounds):
            for method in (BackupMethod.PHYSICAL, BackupMethod.LOGICAL):
                for i in range(len(KINDS)):
                    kind = KINDS[(i + rnd) % len(KINDS)]
                    sample = one_sample(server, method, kind, targets, str(rnd), base, servers)
                    samples[method][kind].append(sample)
                    print(method, kind, json.dumps(sample), flush=True)
            started = time.monotonic()
            table_stats("mariadb", server.engine_config(), ["bench"])
            stats_s.append(round(time.monotonic() - started, 2))
        for method in (BackupMethod.PHYSICAL, BackupMethod.LOGICAL):
            results[str(method)] = summarize(samples[method])
        results["table_stats_s_median"] = round(statistics.median(stats_s), 2)
        results["load_average"]["end"] = [round(x, 2) for x in os.getloadavg()]
        # The restore reads one more physical backup to MinIO (the benchmark deleted its samples).
        asyncio.run(agent_backup(server, BackupMethod.PHYSICAL, targets["agent_to_minio"], "bench-physical"))
        results["restore_physical"] = restore_physical(server, minio.target("bench"), base, results)
        print("restore:", results["restore_physical"], flush=True)
    finally:
        server.stop()
        minio.stop()
        shutil.rmtree(base, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    for label in ("physical", "logical"):
        for kind, figures in results[label].items():
            print(label, kind, {k: v for k, v in figures.items() if k != "samples"})
    print(f"saved {RESULTS}")


def restore_physical(
    server: MariaDBServer, source: BackupTarget, base: Path, results: dict[str, Any]
) -> dict[str, Any]:
    """Download, verify, extract and prepare ``bench-physical``, then start a server on it."""
    started = time.monotonic()
    restored = base / "restored"
    restore_mod.restore(
        RestoreRequest(
            backup_id="bench-physical",
            source=source,
            engine="mariadb",
            major="10.11",
            data_dir=str(restored / "data"),
        )
    )
    verified_s = time.monotonic() - started
    new = start_mariadb_on(restored, server.password)
    try:
        ready_s = time.monotonic() - started
        rows = int(new.query("SELECT COUNT(*) FROM bench.t")[0][0])
    finally:
        new.stop()
    return {
        "download_verify_extract_prepare_s": round(verified_s, 1),
        "until_server_answers_s": round(ready_s, 1),
        "rows_match": rows == results["dataset"]["rows"],
    }


if __name__ == "__main__":
    main()
