"""Operator scale: N DatabaseInstances on a private local cluster (kwok nodes), figures saved, not asserted.

Run: ``.venv/bin/python benchmarks/scale.py [--n 1000]``. It starts its OWN cluster (hack/localcluster) in a
temp dir, never the shared one, installs crds/, starts ``kubetrove-operator`` as a subprocess and measures:

- idle latency: one CR at a time on an empty cluster; create call -> its StatefulSet seen by a watch;
- bulk: N CRs in total (the idle ones included), created by 4 client threads; wall time from the first
  create to the last StatefulSet seen, then to every CR's status observed (observedGeneration current);
- operator RSS (/proc/<pid>/status VmRSS, VmHWM) and CPU time with N CRs settled;
- idle CPU: the operator's CPU seconds per minute with N CRs settled and nothing created, over the
  first 60 s and over the whole ``--idle-window`` (make it longer than the instance status interval
  plus its jitter, 360 s by default settings, so every CR's status timer runs in it about once);
- burst latency: 100 CRs created at once on top of the N; the same create -> StatefulSet latency;
- resync after a restart (SIGTERM, new process): spawn -> the new process logged kopf's "Resuming is
  processed" for every CR, i.e. every CR's resume handler (the full reconcile) succeeded once.

Goals (issues 4 and 21): RSS <= 256 MiB, p99 <= 1 s idle and <= 5 s in the burst, idle CPU <= 3 s a
minute, resync <= 30 s. Printed and written to benchmarks/results/scale.json with the parameters (N,
machine, Kubernetes version, commit); the file's earlier results move under its "history" key, newest
first. Everything started here (operator, cluster) is stopped by PID on exit, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hack"))

from localcluster import Layout, cluster, components, down, kubectl, up  # noqa: E402
from localcluster.layout import free_port  # noqa: E402

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))  # this tree's operator, whatever the venv has installed
from tests.e2e.operator_support import Operator as E2EOperator  # noqa: E402

from kubetrove.runtime.config import OperatorConfig  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
GROUP, VERSION, PLURAL = "kubetrove.io", "v1alpha1", "databaseinstances"
NAMESPACE = "bench"
PODS_PER_NODE = 110  # components.NODE_MANIFEST's pods capacity
GOALS = {
    "rss_mib_max": 256,
    "idle_p99_s_max": 1.0,
    "burst_p99_s_max": 5.0,
    "idle_cpu_s_per_min_max": 3.0,
    "resync_s_max": 30.0,
}
# kopf's text log names no object, so handled CRs are counted: one such line per CR. A CR whose create
# handler the old process had not finished (kopf records that last) is handled as a creation again.
RESUMED = re.compile(r"(?:Resuming|Creation) is processed: 1 succeeded; 0 failed")


def _wide_service_range(*args: Any) -> list[str]:
    """The local cluster's apiserver with a /16 Service range: its /24 holds 254 ClusterIPs, and every
    DatabaseInstance takes two (rw, ro), so it runs out at ~126 instances."""
    return [
        "--service-cluster-ip-range=10.0.0.0/16" if a.startswith("--service-cluster-ip-range=") else a
        for a in components.apiserver(*args)
    ]


def say(msg: str) -> None:
    """Progress line with a timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentiles(samples: list[float]) -> dict[str, float | int]:
    """Count, p50, p99 (nearest rank) and max, in seconds."""
    if not samples:
        return {"count": 0}
    s = sorted(samples)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]

    return {
        "count": len(s),
        "p50_s": round(rank(0.5), 3),
        "p99_s": round(rank(0.99), 3),
        "max_s": round(s[-1], 3),
    }


def wait_for(check: Callable[[], bool], what: str, timeout: float, step: float = 0.05) -> float:
    """Seconds until check() held; raises TimeoutError."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        time.sleep(step)
    return time.monotonic() - t0


class StatefulSetWatch:
    """Monotonic time at which each owner's StatefulSet was first seen (a watch, re-listed on expiry)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.apps = client.AppsV1Api(api)
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> StatefulSetWatch:
        """Begin watching (returns once the first list is done)."""
        self._rv = self._list()
        self._thread.start()
        return self

    def _record(self, items: Iterable[Any]) -> None:
        now = time.monotonic()
        for sts in items:
            for ref in sts.metadata.owner_references or []:
                self.seen.setdefault(ref.name, now)

    def _list(self) -> str:
        res = self.apps.list_namespaced_stateful_set(NAMESPACE)
        self._record(res.items)
        return str(res.metadata.resource_version)

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(
                    self.apps.list_namespaced_stateful_set,
                    NAMESPACE,
                    resource_version=self._rv,
                    timeout_seconds=60,
                ):
                    self._rv = ev["object"].metadata.resource_version
                    if ev["type"] == "ADDED":
                        self._record([ev["object"]])
                    if self._stop.is_set():
                        return
            except Exception:  # 410 Gone, a dropped stream: re-list (when the API answers) and go on
                time.sleep(0.2)
                try:
                    self._rv = self._list()
                except Exception:  # the cluster is going down, or not answering for now
                    time.sleep(1)

    def stop(self) -> None:
        """Ask the thread to end (it is a daemon: it never blocks exit)."""
        self._stop.set()


class Operator(E2EOperator):
    """The e2e tier's operator process, with the production status interval (e2e uses 5 s)."""

    def __init__(self, kubeconfig: Path, log_path: Path) -> None:
        super().__init__(kubeconfig, log_path, "kubetrove-bench")
        self.metrics_port = free_port()

    def start(self, wait_for_lease: bool = True) -> None:
        """Spawn it (``kubetrove-operator``, as `make run`); the Lease is awaited separately."""
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "operator"),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBETROVE_LEASE_NAME": self.lease_name,
            "KUBETROVE_METRICS_PORT": str(self.metrics_port),
            "KUBETROVE_HEALTH_PORT": "0",  # a shared machine may run another operator on 8081
        }
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # This interpreter (the venv running the benchmark) with the tree's operator on PYTHONPATH,
            # as the e2e tier starts it: a worktree has no .venv of its own.
            argv = [sys.executable, "-m", "kubetrove.handlers.main"]
            self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        if wait_for_lease:
            self.await_lease()

    def await_lease(self, timeout: float = 120) -> None:
        """Until it holds the Lease (it handles nothing before)."""
        proc = self.proc
        assert proc is not None
        wait_for(lambda: "acquired by" in self.log() or proc.poll() is not None, "the Lease", timeout, 0.1)
        if proc.poll() is not None:
            raise RuntimeError(f"operator exited:\n{self.log()[-3000:]}")

    def proc_status(self) -> dict[str, float]:
        """VmRSS and VmHWM in MiB, user+system CPU seconds."""
        assert self.proc is not None
        proc = Path(f"/proc/{self.proc.pid}")
        fields = dict(ln.split(":", 1) for ln in (proc / "status").read_text().splitlines() if ":" in ln)
        stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return {
            "vm_rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
            "vm_hwm_mib": round(int(fields["VmHWM"].split()[0]) / 1024, 1),
            "cpu_s": round(cpu, 1),
        }

    def api_calls(self) -> dict[str, float]:
        """The operator's Kubernetes API counters (kubetrove_api_*): calls per "VERB resource", and the
        summed seconds calls waited for a worker thread (``queue_s``) and ran (``request_s``)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "kubetrove_api_requests_total":
                    out[f"{sample.labels['verb']} {sample.labels['resource']}"] = sample.value
                elif sample.name == "kubetrove_api_queue_seconds_sum":
                    out["queue_s"] = sample.value
                elif sample.name == "kubetrove_api_request_duration_seconds_sum":
                    out["request_s"] = out.get("request_s", 0.0) + sample.value
        return out


def per_cr(before: dict[str, float], after: dict[str, float], crs: int) -> dict[str, float]:
    """API calls (and queue/request seconds) between two ``api_calls`` readings, per created CR; the
    total calls per CR under "calls"."""
    diff = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    calls = sum(v for k, v in diff.items() if " " in k)
    out = {k: round(v / crs, 2) for k, v in sorted(diff.items()) if v}
    return {"calls": round(calls / crs, 2), **out}


class Profiler:
    """py-spy (when ``--py-spy`` names it) recording the operator for a while: where its CPU goes."""

    def __init__(self, py_spy: str | None, out: Path) -> None:
        self.py_spy, self.out, self.proc = py_spy, out, None

    def again(self, out: Path) -> Profiler:
        """Another recording with the same py-spy, into ``out``."""
        return Profiler(self.py_spy, out)

    def start(self, pid: int, seconds: int) -> None:
        if self.py_spy:
            argv = [self.py_spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "50"]
            argv += ["--format", "raw", "--output", str(self.out), "--nonblocking"]
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def summary(self, top: int = 25) -> dict[str, Any]:
        """Samples by innermost frame and by our own innermost frame (``kubetrove``), most first."""
        if self.proc is None:
            return {}
        self.proc.wait(timeout=600)
        leaf: dict[str, int] = {}
        ours: dict[str, int] = {}
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            n = int(count)
            total += n
            leaf[frames[-1]] = leaf.get(frames[-1], 0) + n
            mine = [f for f in frames if "kubetrove" in f]
            key = mine[-1] if mine else "(no kubetrove frame)"
            ours[key] = ours.get(key, 0) + n

        def best(d: dict[str, int]) -> list[tuple[str, int]]:
            return sorted(d.items(), key=lambda kv: -kv[1])[:top]

        return {"samples": total, "by_leaf": best(leaf), "by_kubetrove_frame": best(ours)}


class Bench:
    """The cluster's API, the CR template, and create-time bookkeeping."""

    def __init__(self, lay: Layout) -> None:
        self.lay = lay
        self.api = config.new_client_from_config(str(lay.kubeconfig))
        self.api.configuration.connection_pool_maxsize = 8
        self.objects = client.CustomObjectsApi(self.api)
        self.template: dict[str, Any] = yaml.safe_load(
            (ROOT / "examples" / "mariadb-instance.yaml").read_text()
        )
        # kwok's pods run no agent, so the users/databases phase would retry forever (NotReady) and no
        # handler would ever finish: the benchmark measures the Kubernetes side only.
        for field in ("databases", "users"):
            self.template["spec"].pop(field, None)
        self.created: dict[str, float] = {}
        self.watch: StatefulSetWatch | None = None

    def prepare(self, nodes: int) -> None:
        """CRDs Established, extra kwok nodes Ready, the namespace."""
        kubectl(self.lay, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
        kubectl(self.lay, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        extra = [
            components.NODE_MANIFEST.replace(components.NODE_NAME, f"kwok-bench-{i}") for i in range(1, nodes)
        ]
        if extra:
            kubectl(self.lay, "apply", "-f", "-", stdin="\n---\n".join(extra))
        kubectl(self.lay, "wait", "--for=condition=Ready", "--timeout=120s", "node", "--all")
        kubectl(self.lay, "create", "namespace", NAMESPACE)
        self.watch = StatefulSetWatch(self.api).start()

    def create(self, name: str) -> None:
        """Create one DatabaseInstance (the example, renamed); records the time just before the call."""
        body = copy.deepcopy(self.template)
        body["metadata"] = {"name": name, "namespace": NAMESPACE}
        self.created[name] = time.monotonic()
        self.objects.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    def create_many(self, names: list[str], workers: int) -> None:
        """Create as fast as ``workers`` client threads can."""
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self.create, names))

    def applied(self, names: Iterable[str]) -> bool:
        """Has every one's StatefulSet been seen?"""
        assert self.watch is not None
        return all(n in self.watch.seen for n in names)

    def latencies(self, names: Iterable[str]) -> list[float]:
        """Create -> StatefulSet seen, per CR."""
        assert self.watch is not None
        return [self.watch.seen[n] - self.created[n] for n in names]

    def unobserved(self) -> int:
        """CRs whose status.observedGeneration is not their generation yet."""
        items = self.objects.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
        return sum(
            1
            for o in items
            if (o.get("status") or {}).get("observedGeneration") != o["metadata"].get("generation")
        )


def names(prefix: str, count: int) -> list[str]:
    """``prefix-00000`` ... (DNS-1123)."""
    return [f"{prefix}-{i:05d}" for i in range(count)]


def k8s_version(b: Bench) -> str:
    """The API server's gitVersion."""
    return str(client.VersionApi(b.api).get_code().git_version)


def machine() -> str:
    """Architecture, cores, kernel."""
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def idle_cpu(op: Operator, window: float) -> dict[str, float]:
    """The operator's CPU seconds per minute while nothing is created: over the first 60 s and over the
    whole ``window``."""
    t0, cpu0 = time.monotonic(), op.proc_status()["cpu_s"]
    time.sleep(min(60.0, window))
    first = (op.proc_status()["cpu_s"] - cpu0) / (time.monotonic() - t0) * 60
    if window > 60:
        time.sleep(window - 60)
    whole = (op.proc_status()["cpu_s"] - cpu0) / (time.monotonic() - t0) * 60
    return {
        "window_s": round(time.monotonic() - t0, 1),
        "first_60s_cpu_s_per_min": round(first, 2),
        "cpu_s_per_min": round(whole, 2),
    }


def run(
    b: Bench,
    op: Operator,
    out: dict[str, Any],
    n: int,
    idle: int,
    burst: int,
    timeout: float,
    window: float,
    profiler: Profiler,
    profile_s: int,
) -> None:
    """Every measurement, in order, into ``out`` (so a failure keeps what was measured)."""
    say("operator: starting")
    op.start()
    assert op.proc is not None

    # One CR first, not counted: the first request after the CRDs are installed may meet "storage is
    # (re)initializing" (429) and kopf's retry back-off.
    b.create("warmup")
    wait_for(lambda: b.applied(["warmup"]), "the warm-up StatefulSet", timeout)
    say(f"idle: {idle} CRs one at a time")
    idle_names = names("idle", idle)
    for name in idle_names:
        b.create(name)
        wait_for(lambda n=name: b.applied([n]), f"StatefulSet {name}", timeout)  # type: ignore[misc]
    out["idle_latency"] = percentiles(b.latencies(idle_names))
    say(f"idle latency: {out['idle_latency']}")

    bulk = names("bulk", max(0, n - idle - 1))
    say(f"bulk: {len(bulk)} more CRs (total {len(b.created) + len(bulk)})")
    calls0 = op.api_calls()
    t0 = time.monotonic()
    b.create_many(bulk, workers=4)
    created_s = time.monotonic() - t0
    wait_for(lambda: b.applied(bulk), "every bulk StatefulSet", timeout, 0.2)
    applied_s = max(b.watch.seen[x] for x in bulk) - t0 if bulk else 0.0  # type: ignore[union-attr]
    say(f"bulk: created in {created_s:.1f}s, every StatefulSet applied after {applied_s:.1f}s")
    wait_for(lambda: b.unobserved() == 0, "every status observed", timeout, 1.0)
    observed_s = time.monotonic() - t0
    out["bulk"] = {
        "crs": len(bulk),
        "create_calls_s": round(created_s, 1),
        "all_statefulsets_applied_s": round(applied_s, 1),
        "all_status_observed_s": round(observed_s, 1),
        "latency": percentiles(b.latencies(bulk)),
        "api_calls_per_cr": per_cr(calls0, op.api_calls(), max(1, len(bulk))),
    }
    say(f"bulk: {out['bulk']}")
    say(f"idle CPU: {window:.0f}s with nothing created")
    calls0 = op.api_calls()
    idle_profiler = profiler.again(profiler.out.with_suffix(".idle"))
    idle_profiler.start(op.proc.pid, profile_s)
    out["idle_cpu"] = idle_cpu(op, window)  # also lets the status timers run before RSS is read
    # Per CR at N over the window: what the status timers cost.
    out["idle_cpu"]["api_calls_per_cr"] = per_cr(calls0, op.api_calls(), len(b.created))
    if idle_profiler.proc is not None:
        out["idle_profile"] = {"seconds": profile_s, **idle_profiler.summary()}
    say(f"idle CPU: {out['idle_cpu']}")
    out["operator_at_n"] = {"crs": len(b.created), **op.proc_status()}
    say(f"operator at N: {out['operator_at_n']}")

    burst_names = names("burst", burst)
    say(f"burst: {burst} CRs at once on top of {len(b.created)}")
    calls0, cpu0, load0 = op.api_calls(), op.proc_status()["cpu_s"], os.getloadavg()
    profiler.start(op.proc.pid, profile_s)
    b.create_many(burst_names, workers=4)
    wait_for(lambda: b.applied(burst_names), "every burst StatefulSet", timeout, 0.1)
    out["burst_latency"] = {
        **percentiles(b.latencies(burst_names)),
        "operator_cpu_s": round(op.proc_status()["cpu_s"] - cpu0, 1),
        "api_calls_per_cr": per_cr(calls0, op.api_calls(), burst),
        "load_average_before": load0,
    }
    say(f"burst latency: {out['burst_latency']}")
    wait_for(lambda: b.unobserved() == 0, "every status observed", timeout, 1.0)
    out["operator_after_burst"] = {"crs": len(b.created), **op.proc_status()}
    out["burst_latency"]["api_calls_per_cr_until_observed"] = per_cr(calls0, op.api_calls(), burst)
    if profiler.proc is not None:
        out["burst_profile"] = {"seconds": profile_s, **profiler.summary()}

    total = set(b.created)
    say(f"restart: SIGTERM, new process, until {len(total)} resumes succeeded")
    op.stop()
    t0 = time.monotonic()
    op.start(wait_for_lease=False)
    op.await_lease()
    lease_s = time.monotonic() - t0

    def resumed() -> bool:
        return len(RESUMED.findall(op.log())) >= len(total)

    wait_for(resumed, "every resume", timeout, 0.5)
    resync_s = time.monotonic() - t0
    out["resync_after_restart"] = {
        "crs": len(total),
        "lease_acquired_s": round(lease_s, 1),
        "all_resumed_s": round(resync_s, 1),
        "definition": "new process spawned -> kopf logged 'Resuming (or Creation) is processed' for every CR",
        **op.proc_status(),
    }
    say(f"resync: {out['resync_after_restart']}")


def commit() -> str:
    """The benchmarked tree's commit (with "+dirty" when it has uncommitted changes)."""

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False).stdout

    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    return git("rev-parse", "--short", "HEAD").strip() + ("+dirty" if dirty else "")


def history(path: Path) -> list[dict[str, Any]]:
    """The results already in ``path``, newest first, for the new result's "history" key: nothing lost."""
    if not path.exists():
        return []
    earlier: dict[str, Any] = json.loads(path.read_text())
    older = earlier.pop("history", [])
    return [earlier, *older]


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """CLI; figures on stdout and in benchmarks/results/scale.json."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000, help="DatabaseInstances in total before the burst")
    p.add_argument("--idle", type=int, default=50, help="idle samples (part of N)")
    p.add_argument("--burst", type=int, default=100, help="CRs in the burst (on top of N)")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed for each wait")
    p.add_argument(
        "--idle-window",
        type=float,
        default=60,
        help="seconds of idle CPU measured at N (longer than the instance status interval + jitter: "
        "every status timer runs in it)",
    )
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--py-spy", help="py-spy executable: record the operator during the burst")
    p.add_argument("--profile-seconds", type=int, default=30, help="how long py-spy records")
    args = p.parse_args(argv)
    settings = OperatorConfig.from_env(dict(os.environ))  # what the operator will read, as it reads it
    work = Path(tempfile.mkdtemp(prefix="kubetrove-scale-"))
    lay = Layout(work / "localkube")
    op = Operator(lay.kubeconfig, work / "operator.log")
    # Ctrl-C and SIGTERM both unwind through the finally below.
    signal.signal(signal.SIGTERM, _interrupt)
    t_start = time.monotonic()
    b: Bench | None = None
    try:
        say(f"private cluster in {lay.root}")
        cluster.ARGV["kube-apiserver"] = _wide_service_range  # this process's private cluster only
        up(lay, timeout=180)
        b = Bench(lay)
        nodes = math.ceil((args.n + args.burst) / PODS_PER_NODE) + 1
        b.prepare(nodes)
        parameters = {
            "n": args.n,
            "idle_samples": min(args.idle, args.n),
            "burst": args.burst,
            "kwok_nodes": nodes,
            "kubernetes": k8s_version(b),
            "machine": machine(),
            "load_average_at_start": os.getloadavg(),  # the machine is shared: context for the figures
            "python": platform.python_version(),
            "template": "examples/mariadb-instance.yaml minus databases/users (no agent in kwok pods)",
            "latency": "create call -> the CR's StatefulSet seen by a watch",
            "commit": commit(),
            "status_interval_s": settings.status_interval,
            "instance_status_interval_s": settings.instance_status_interval,
            "idle_window_s": args.idle_window,
        }
        figures: dict[str, Any] = {}
        status = 0
        try:
            profiler = Profiler(args.py_spy, work / "burst.pyspy")
            run(
                b, op, figures, args.n, min(args.idle, args.n), args.burst, args.timeout, args.idle_window,
                profiler, args.profile_seconds,
            )  # fmt: skip
        except (Exception, KeyboardInterrupt) as exc:  # keep what was measured, and say what stopped it
            figures["error"] = repr(exc)
            status = 1
        result = {
            "parameters": parameters,
            "goals": GOALS,
            **figures,
            # Handler retries (kopf TemporaryError) over the whole run: 0 unless something pushed back.
            "handler_retries": op.log_path.read_text(errors="replace").count("failed temporarily"),
            "load_average_at_end": os.getloadavg(),
            "wall_s": round(time.monotonic() - t_start, 1),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        result["history"] = history(args.output)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        say(f"written to {args.output}")
        return status
    finally:
        say("cleanup: operator, cluster, temp dir")
        if b is not None and b.watch is not None:
            b.watch.stop()
        op.stop()
        down(lay)
        if op.log_path.exists():  # kept for a look at what the operator did
            shutil.copy(op.log_path, Path(tempfile.gettempdir()) / "kubetrove-scale-operator.log")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
