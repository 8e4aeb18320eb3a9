"""The Cassandra agent's ring view: ``nodetool status`` every 5 s (before) vs a Jolokia read every 1 s (now).

On one real Cassandra 5.0.9 node (tests/integration/servers/cassandra.py: the image's JVM flags, the
Jolokia agent loaded as the image's launcher loads it), three windows of ``--seconds`` each:

- ``idle``: nothing reads the ring (the node's own background CPU: the baseline);
- ``nodetool_every_5s``: what the agent did before, ``nodetool -h 127.0.0.1 -p <jmx> status`` (the
  image's own hack/images/files/nodetool.sh: its JVM flags) once every 5 s, one at a time;
- ``jolokia_every_1s``: what it does now, ``ring.read_ring`` once a second (the watcher's refresh);
- ``idle_after``: idle again (the baseline is the mean of both idle windows);
- bursts of back-to-back reads (10 nodetool, 500 Jolokia): CPU milliseconds per read, reader and JVM.

For each: CPU seconds per minute of the reader (nodetool's JVMs: this process's waited-for children; the
Jolokia reads: this process) and of the Cassandra JVM above its idle figure (JMX/HTTP serving), the peak
RSS of one nodetool JVM (ru_maxrss of the children), this process's RSS growth over the Jolokia window,
and the Cassandra JVM's RSS. Figures are printed and saved to benchmarks/results/cassandra_ring_view.json;
nothing is asserted (the machine is shared: timings move).

    PYTHONPATH=operator .venv/bin/python -m benchmarks.cassandra_ring_view [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.backup import process_cpu_s
from tests.integration.servers import cassandra

from kubetrove.agent.engines.cassandra.ring import read_ring

RESULTS = Path(__file__).parent / "results" / "cassandra_ring_view.json"
REPO = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024


def rss_mib(pid: int) -> float:
    """Resident set size of a running process (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for {pid}")


def nodetool_status(server: cassandra.CassandraServer) -> Callable[[], None]:
    """One ``nodetool status`` through the image's own nodetool script, on the same jars."""
    home = Path(tempfile.mkdtemp(prefix="kt-bench-nodetool-"))
    (home / "lib").symlink_to(cassandra.lib_dir())
    env = {
        **os.environ,
        "CASSANDRA_HOME": str(home),
        "CASSANDRA_CONF": str(REPO / "hack" / "images" / "files" / "cassandra-conf"),
    }
    argv = ["sh", str(REPO / "hack/images/files/nodetool.sh"), "-h", "127.0.0.1", "-p", str(server.jmx_port)]

    def run() -> None:
        out = subprocess.run([*argv, "status"], env=env, capture_output=True, text=True, check=True)
        assert "UN  127.0.0.1" in out.stdout, out.stdout

    return run


def _read(url: str) -> None:
    assert [n.state for n in read_ring(url, timeout=10)] == ["UN"]


def window(
    server: cassandra.CassandraServer, seconds: float, every: float, read: Callable[[], None] | None
) -> dict[str, Any]:
    """``read`` every ``every`` seconds (each one after the last ended) for ``seconds``; CPU and RSS."""
    own0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    jvm0, load = process_cpu_s(server.proc.pid), os.getloadavg()[0]
    own_rss0 = own0.ru_maxrss
    started = time.monotonic()
    reads = 0
    while (now := time.monotonic()) < started + seconds:
        if read is not None:
            read()
            reads += 1
        time.sleep(max(0.0, now + every - time.monotonic()))
    elapsed = time.monotonic() - started
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    per_minute = 60 / elapsed
    return {
        "seconds": round(elapsed, 1),
        "reads": reads,
        "load_average_1m": round(load, 2),
        "reader_cpu_s_per_min": round(
            (own.ru_utime + own.ru_stime - own0.ru_utime - own0.ru_stime) * per_minute
            + (kids.ru_utime + kids.ru_stime - kids0.ru_utime - kids0.ru_stime) * per_minute,
            3,
        ),
        "cassandra_cpu_s_per_min": round((process_cpu_s(server.proc.pid) - jvm0) * per_minute, 3),
        "cassandra_rss_mib": rss_mib(server.proc.pid),
        "children_peak_rss_mib": round(kids.ru_maxrss / 1024, 1),
        "reader_rss_growth_kib": own.ru_maxrss - own_rss0,
    }


def burst(server: cassandra.CassandraServer, count: int, read: Callable[[], None]) -> dict[str, Any]:
    """``count`` reads back to back: CPU milliseconds per read, of the reader and of the Cassandra JVM
    (the node's own background CPU over the burst is small next to ``count`` reads, and is included)."""
    own0, kids0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    jvm0, started = process_cpu_s(server.proc.pid), time.monotonic()
    for _ in range(count):
        read()
    elapsed = time.monotonic() - started
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    reader = own.ru_utime + own.ru_stime - own0.ru_utime - own0.ru_stime
    reader += kids.ru_utime + kids.ru_stime - kids0.ru_utime - kids0.ru_stime
    return {
        "reads": count,
        "wall_ms_per_read": round(elapsed * 1000 / count, 1),
        "reader_cpu_ms_per_read": round(reader * 1000 / count, 1),
        "cassandra_cpu_ms_per_read": round((process_cpu_s(server.proc.pid) - jvm0) * 1000 / count, 1),
    }


def main() -> None:
    """Run the benchmark and save its figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=60.0, help="length of each window")
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="kt-bench-ring-"))
    server = cassandra.start(base / "node")
    url = f"http://127.0.0.1:{server.jolokia_port}/jolokia/"
    results: dict[str, Any] = {
        "parameters": {
            "engine": f"cassandra {cassandra.VERSION}, one node, idle",
            "jolokia": cassandra.JOLOKIA_VERSION,
            "cores": os.cpu_count(),
            "window_seconds": args.seconds,
            "nodetool": "hack/images/files/nodetool.sh (the image's), one call at a time, every 5 s",
            "jolokia_read": "ring.read_ring: one HTTP POST of the 8 StorageService attributes, every 1 s",
        }
    }
    try:
        # Warm: the first read loads Jolokia's classes (the agent's first read after the node starts).
        results["view"] = [n.model_dump() for n in read_ring(url, timeout=10)]
        nodetool = nodetool_status(server)
        nodetool()  # warm the page cache for the jars
        results["idle"] = window(server, args.seconds, 1.0, None)
        print("idle", results["idle"], flush=True)
        results["nodetool_every_5s"] = window(server, args.seconds, 5.0, nodetool)
        print("nodetool_every_5s", results["nodetool_every_5s"], flush=True)
        results["jolokia_every_1s"] = window(server, args.seconds, 1.0, lambda: _read(url))
        print("jolokia_every_1s", results["jolokia_every_1s"], flush=True)
        results["idle_after"] = window(server, args.seconds, 1.0, None)
        print("idle_after", results["idle_after"], flush=True)
        results["burst_nodetool"] = burst(server, 10, nodetool)
        print("burst_nodetool", results["burst_nodetool"], flush=True)
        results["burst_jolokia"] = burst(server, 500, lambda: _read(url))
        print("burst_jolokia", results["burst_jolokia"], flush=True)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    # The node's own background CPU moves (compaction, GC, gossip): the mean of the two idle windows.
    idle = (results["idle"]["cassandra_cpu_s_per_min"] + results["idle_after"]["cassandra_cpu_s_per_min"]) / 2
    results["summary"] = {
        kind: {
            "cpu_s_per_min_total": round(
                results[kind]["reader_cpu_s_per_min"] + results[kind]["cassandra_cpu_s_per_min"] - idle, 3
            ),
            "reader_cpu_s_per_min": results[kind]["reader_cpu_s_per_min"],
            "cassandra_cpu_s_per_min_above_idle": round(results[kind]["cassandra_cpu_s_per_min"] - idle, 3),
        }
        for kind in ("nodetool_every_5s", "jolokia_every_1s")
    }
    for kind, every in (("nodetool", 5), ("jolokia", 1)):
        per_read = results[f"burst_{kind}"]
        results["summary"][f"{kind}_cpu_ms_per_read"] = {
            "reader": per_read["reader_cpu_ms_per_read"],
            "cassandra": per_read["cassandra_cpu_ms_per_read"],
            "every_s": every,
        }
    results["summary"]["nodetool_peak_rss_mib"] = results["nodetool_every_5s"]["children_peak_rss_mib"]
    results["summary"]["jolokia_reader_rss_growth_kib"] = results["jolokia_every_1s"]["reader_rss_growth_kib"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print("summary", json.dumps(results["summary"], indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
