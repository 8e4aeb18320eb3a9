"""Failover and switchover write gaps seen by a client, on real servers through real agents and the real loop.

Run: ``PYTHONPATH=operator .venv/bin/python benchmarks/failover.py [--rounds 10] [--engines mongodb]``
(root: PostgreSQL runs as the ``postgres`` user; ``--engines`` reruns those engines' rows and keeps the
others'). Uses tests/integration/cluster_harness.py. The write gap is the client's: last acknowledged
write on the old primary -> first acknowledged write on the new one (CloudNativePG's fastfailover
measure). Nothing here is asserted; figures are printed and written to benchmarks/results/failover.json.
Acknowledged writes lost must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.cluster_engine_mongodb import MongoDBEngine  # noqa: E402
from tests.integration.cluster_engines import MariaDBEngine, MySQLEngine, PostgreSQLEngine  # noqa: E402
from tests.integration.cluster_harness import (  # noqa: E402
    DETECTION_SECONDS,
    INTERVAL_SECONDS,
    Cluster,
    Engine,
    Writer,
    failover_round,
    missing_and_duplicates,
    rejoin,
    start_cluster,
    switchover_round,
    until,
)

RESULTS = ROOT / "benchmarks" / "results" / "failover.json"


def summary(gaps: list[float], lost: int, writes: int) -> dict[str, Any]:
    """p50 / p99 (nearest rank) / max of the gaps, in seconds."""
    ordered = sorted(gaps)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * len(ordered) + 0.5) - 1)]
    return {
        "rounds": len(gaps),
        "gap_p50_s": round(statistics.median(ordered), 3),
        "gap_p99_s": round(p99, 3),
        "gap_max_s": round(ordered[-1], 3),
        "gaps_s": [round(g, 3) for g in gaps],
        "acknowledged_writes": writes,
        "acknowledged_writes_lost": lost,
    }


async def run(engine: Engine, rounds: int, kind: str) -> dict[str, Any]:
    """``rounds`` kills (each followed by the old primary's rejoin) or switchovers under one writer."""
    load_before = os.getloadavg()[0]  # the machine is shared: how busy it was is part of the figure
    cluster: Cluster = await start_cluster(engine)
    writer = Writer(cluster).start()
    gaps: list[float] = []
    rebuilds: list[float] = []
    try:
        for n in range(rounds):
            if kind == "failover":
                old, new, gap = await failover_round(cluster, writer)
                if isinstance(engine, MySQLEngine):
                    rebuilt = await rejoin_or_rebuild(cluster, old)
                    if rebuilt is not None:
                        rebuilds.append(rebuilt)
                else:
                    await rejoin(cluster, old)
            else:
                old = cluster.primary
                new = next(p for p in cluster.pods if p != old)
                gap = await switchover_round(cluster, writer, new)
                await cluster.healthy()
            gaps.append(gap)
            print(f"{engine.name} {kind} {n + 1}/{rounds}: {old} -> {new}, write gap {gap:.2f}s", flush=True)
    finally:
        writer.stop()
        try:
            missing, duplicates = missing_and_duplicates(cluster, writer)
        finally:
            await cluster.close()
    result = summary(gaps, len(missing), len(writer.acked))
    result["duplicates"] = duplicates
    result["load_average_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if isinstance(engine, MySQLEngine) and kind == "failover":
        result["ex_primaries_errant_and_cloned"] = len(rebuilds)
        # Quarantine seen -> the loop's automatic clone rebuild done (Healthy again), under the writer.
        result["rebuild_s"] = [round(r, 2) for r in rebuilds]
    return result


async def rejoin_or_rebuild(cluster: Cluster, old: str) -> float | None:
    """MySQL: the restarted ex-primary rejoins, or (its unacknowledged tail recovered) is errant and the
    loop rebuilds it by clone from the new primary (docs/clustering.md, I7); the rebuild's seconds, if any."""
    cluster.record.rebuilds.pop(old, None)
    await asyncio.to_thread(cluster.restart, old)
    await until(
        lambda: (
            old in cluster.record.errant
            or old in cluster.record.rebuilds
            or cluster.record.state == "Healthy"
        ),
        f"{old} back",
    )
    if old not in cluster.record.errant and old not in cluster.record.rebuilds:
        return None
    began = time.monotonic()
    await until(lambda: old in cluster.record.rebuilds, f"{old} rebuilt")
    await until(lambda: old not in cluster.record.errant, f"{old} no longer errant")
    await cluster.healthy()
    return time.monotonic() - began


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--engines",
        default="mariadb,postgresql,mysql,mongodb",
        help="comma-separated; others keep their stored rows",
    )
    args = parser.parse_args()
    wanted = set(args.engines.split(","))
    results: dict[str, Any] = {
        "conditions": {
            "detection_seconds": DETECTION_SECONDS,
            "loop_interval_seconds": INTERVAL_SECONDS,
            "members": 3,
            "client": "one thread, autocommit INSERTs through status.primary, reconnect on any error",
            "mariadb": "10.11, lossless semi-sync AFTER_SYNC, timeout 1 day, GTID slave_pos",
            "mysql": "9.7.4 (Debian sid), lossless semi-sync AFTER_SYNC, timeout 1 day, GTID auto-position;"
            " an errant ex-primary is rebuilt automatically by the loop (CLONE INSTANCE FROM the new"
            " primary) before the next round",
            "postgresql": "15, streaming, synchronous_standby_names 'ANY 1 (*)', rejoin via pg_rewind",
            "mongodb": "6.0.5 replica set, electionTimeoutMillis 3000, w:majority inserts (unique _id, no"
            " driver retry) to the recorded primary; switchover = spec.primary (replSetStepUp)",
            "machine": f"{platform.machine()}, {platform.system()} {platform.release()}, loopback",
            "kill": "SIGKILL of mariadbd / mysqld / the postmaster / mongod",
        }
    }
    if RESULTS.exists():  # rows of engines not run this time are kept
        results = {**json.loads(RESULTS.read_text()), "conditions": results["conditions"]}
    plan = (
        ("mariadb", "failover"),
        ("mariadb", "switchover"),
        ("postgresql", "failover"),
        ("mysql", "failover"),
        ("mysql", "switchover"),
        ("mongodb", "failover"),
        ("mongodb", "switchover"),
    )
    for name, kind in plan:
        if name not in wanted:
            continue
        with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
            engine: Any = {
                "mariadb": lambda: MariaDBEngine(Path(tmp)),
                "mysql": lambda: MySQLEngine(Path(tmp)),
                "mongodb": lambda: MongoDBEngine(Path(tmp)),
                "postgresql": PostgreSQLEngine,
            }[name]()
            try:
                results[f"{name}_{kind}"] = await run(engine, args.rounds, kind)
            finally:
                engine.stop()
        print(json.dumps({k: v for k, v in results[f"{name}_{kind}"].items() if k != "gaps_s"}), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
