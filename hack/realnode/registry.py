"""The local OCI registry (CNCF Distribution, hack/build-registry.sh) on 127.0.0.1: the real node's
containerd pulls every image from it, hack/images pushes to it.

One per machine, like the node: a fixed address (KUBETROVE_REGISTRY_PORT, default 5000), because image
references carry it and outlive processes (StatefulSets, the operator's default). Its blobs live in
the realnode dir, so a restart serves what was pushed before. `ensure` reuses a registry that answers
``GET /v2/`` (distribution-spec: 200 from a conforming registry) and starts one otherwise.
Configuration reference: https://distribution.github.io/distribution/about/configuration/
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from localcluster import procs
from localcluster.cluster import ClusterError
from localcluster.layout import cache_root, pinned_version

from .layout import realnode_dir

HOST = "127.0.0.1"
PORT = int(os.environ.get("KUBETROVE_REGISTRY_PORT", "5000"))
ADDRESS = f"{HOST}:{PORT}"
# The repository prefix of every image the project builds: the operator's DEFAULT_IMAGE_REGISTRY
# (tests/unit/packaging/test_registry.py keeps them equal).
REPOSITORY = f"{ADDRESS}/kubetrove"


def say(msg: str) -> None:
    """Progress line (flushed)."""
    print(f"registry: {msg}", flush=True)


def binary() -> Path:
    """The registry built by hack/build-registry.sh."""
    exe = cache_root() / f"registry-{pinned_version('build-registry.sh', 'REGISTRY_VERSION')}" / "registry"
    if not exe.is_file():
        raise FileNotFoundError(f"{exe} missing: run `make setup` (hack/setup.d/65-registry.sh)")
    return exe


def root() -> Path:
    """Config, blobs, log and the PID record."""
    return realnode_dir() / "registry"


def config() -> str:
    """Filesystem storage, deletes allowed (a re-push replaces tags; blobs are reclaimed by
    `registry garbage-collect`), loopback only, no access log (pulls of 300 MiB layers are noise)."""
    return f"""version: 0.1
log:
  level: warn
  accesslog: {{disabled: true}}
storage:
  filesystem: {{rootdirectory: {root() / "data"}}}
  delete: {{enabled: true}}
http:
  addr: {ADDRESS}
"""


def serving() -> bool:
    """Does a registry answer ``GET /v2/`` at ADDRESS?"""
    try:
        with urllib.request.urlopen(f"http://{ADDRESS}/v2/", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def ensure(timeout: float = 60) -> None:
    """A registry serving at ADDRESS: the running one, else a new process (ClusterError if it fails)."""
    if serving():
        return
    exe = binary()
    root().mkdir(parents=True, exist_ok=True)
    (root() / "config.yml").write_text(config())
    log = root() / "registry.log"
    # Distribution v3 exports OpenTelemetry traces by default; there is no collector here.
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    pid = procs.start([str(exe), "serve", str(root() / "config.yml")], log, env=env)
    (root() / "state.json").write_text(json.dumps({"pid": pid, "exe": str(exe.resolve())}))
    t0 = time.monotonic()
    procs.wait_for(lambda: serving() or not procs.running(pid, str(exe.resolve())), timeout, 0.2)
    if not serving():
        raise ClusterError(f"the registry did not start on {ADDRESS}; log {log}:\n{procs.tail(log)}")
    say(f"serving on {ADDRESS} ({time.monotonic() - t0:.1f}s, data {root() / 'data'})")


def garbage_collect() -> str:
    """Delete the manifests no tag names and every blob no manifest references (`registry
    garbage-collect --delete-untagged`; each rebuild re-tags, so old layers of 300-500 MiB pile up
    otherwise: 26 GiB in one day of eight sessions). The running registry keeps serving: the caller
    holds images.locked(), which every push through hack/images takes too, so no upload is in flight
    (a blob uploaded before its manifest would look unreferenced). Returns the space freed, for the log.
    https://distribution.github.io/distribution/about/garbage-collection/"""
    data = root() / "data"
    if not (root() / "config.yml").is_file() or not data.is_dir():
        return "nothing to collect"
    before = _du(data)
    argv = [str(binary()), "garbage-collect", "--delete-untagged", "--quiet", str(root() / "config.yml")]
    res = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 (argv built here)
    if res.returncode != 0:
        raise ClusterError(f"registry garbage-collect failed: {res.stderr.strip()[-2000:]}")
    return f"{(before - _du(data)) >> 20} MiB freed"


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stop() -> None:
    """Stop the registry this machine recorded (its data stays)."""
    try:
        state = json.loads((root() / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return
    if procs.stop(state["pid"], state["exe"]):
        say(f"stopped (pid {state['pid']})")
    (root() / "state.json").unlink(missing_ok=True)
