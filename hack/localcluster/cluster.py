"""Start, reuse, inspect and stop one local cluster (etcd, apiserver, KCM, scheduler, kwok).

Start order: etcd (/health) -> apiserver (/readyz) -> KCM + scheduler -> kwok -> fake Node and the
default StorageClass -> wait until the Node is Ready. `up` holds an flock on the state dir, so two
sessions asking at once get one cluster; a healthy recorded cluster is reused, anything else is
stopped and started fresh (etcd data is throw-away; the PKI is kept).
"""

from __future__ import annotations

import fcntl
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import components, pki, procs
from .layout import COMPONENTS, Binaries, Layout, Ports, State

Argv = Callable[[Binaries, Layout, Ports], list[str]]
ARGV: dict[str, Argv] = {
    "etcd": components.etcd,
    "kube-apiserver": components.apiserver,
    "kube-controller-manager": components.controller_manager,
    "kube-scheduler": components.scheduler,
    "kwok": components.kwok,
}


class ClusterError(RuntimeError):
    """The local cluster could not start; the message carries the failing component's log tail."""


def say(msg: str) -> None:
    """Progress line (stdout, flushed: `make cluster-up` and CI logs show it live)."""
    print(f"localkube: {msg}", flush=True)


@contextmanager
def _locked(lay: Layout) -> Iterator[None]:
    lay.root.mkdir(parents=True, exist_ok=True)
    with lay.lock_file.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _get(url: str, ctx: ssl.SSLContext | None = None) -> bool:
    """True if GET url answers 200 within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:  # noqa: S310 (loopback URL we built)
            return bool(resp.status == 200)
    except OSError:
        return False


def _tls(lay: Layout) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(lay.pki / "ca.crt"))
    ctx.load_cert_chain(str(lay.pki / "admin.crt"), str(lay.pki / "admin.key"))
    return ctx


def _self_signed() -> ssl.SSLContext:
    """KCM and scheduler serve /healthz with an in-memory self-signed cert: loopback, no verification."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _healthz(port: int) -> Callable[[], bool]:
    return lambda: _get(f"https://127.0.0.1:{port}/healthz", _self_signed())


def apiserver_ready(lay: Layout, state: State) -> bool:
    """Does the recorded apiserver answer /readyz with 200?"""
    return _get(f"https://127.0.0.1:{state.ports.apiserver}/readyz", _tls(lay))


def alive(state: State) -> dict[str, bool]:
    """Per component: is the recorded PID still running the recorded executable?"""
    return {c: c in state.pids and procs.running(state.pids[c], state.exes[c]) for c in COMPONENTS}


def healthy(lay: Layout) -> State | None:
    """The recorded state if every component runs and the apiserver is ready, else None."""
    state = lay.read_state()
    if state and all(alive(state).values()) and apiserver_ready(lay, state):
        return state
    return None


def kubectl(lay: Layout, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    """Run the pinned kubectl against this cluster; its stdout (raises ClusterError on failure)."""
    argv = [str(Binaries.locate().kubectl), f"--kubeconfig={lay.kubeconfig}", *args]
    res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if res.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def _start(name: str, b: Binaries, lay: Layout, state: State) -> None:
    argv = ARGV[name](b, lay, state.ports)
    pid = procs.start(argv, lay.log(name))
    state.pids[name], state.exes[name] = pid, str(Path(argv[0]).resolve())
    lay.write_state(state)  # recorded at once, so `down` can clean up a half-started cluster


def _await(name: str, lay: Layout, state: State, check: Callable[[], bool], timeout: float) -> None:
    """Wait for check(); fail fast with the log tail if the component dies or never gets there."""
    t0 = time.monotonic()
    dead = False

    def done() -> bool:
        nonlocal dead
        dead = not procs.running(state.pids[name], state.exes[name])
        return dead or check()

    if not procs.wait_for(done, timeout) or dead:
        why = "exited" if dead else f"not ready after {timeout:.0f}s"
        raise ClusterError(f"{name} {why}; log {lay.log(name)}:\n{procs.tail(lay.log(name))}")
    say(f"{name} ready ({time.monotonic() - t0:.1f}s)")


def _stop_all(lay: Layout, state: State | None) -> None:
    if state is None:
        return
    for name in reversed(COMPONENTS):
        if name in state.pids and procs.stop(state.pids[name], state.exes[name]):
            say(f"stopped {name} (pid {state.pids[name]})")
    lay.state_file.unlink(missing_ok=True)


def up(lay: Layout, *, apiserver_port: int | None = None, timeout: float = 120) -> State:
    """Reuse the healthy cluster in lay, or start a fresh one; its State (raises ClusterError)."""
    with _locked(lay):
        state = healthy(lay)
        if state:
            say(f"reusing the running cluster; kubeconfig: {lay.kubeconfig}")
            return state
        _stop_all(lay, lay.read_state())  # a half-dead leftover
        try:
            return _boot(lay, apiserver_port, timeout)
        except BaseException:
            _stop_all(lay, lay.read_state())
            raise


def _boot(lay: Layout, apiserver_port: int | None, timeout: float) -> State:
    t0 = time.monotonic()
    b = Binaries.locate()
    ports = Ports()
    if apiserver_port:
        ports.apiserver = apiserver_port
    state = State(ports=ports)
    shutil.rmtree(lay.etcd_data, ignore_errors=True)
    pki.ensure_pki(lay.pki)
    pki.write_kubeconfig(lay.pki, ports.apiserver, lay.kubeconfig)
    say(f"starting in {lay.root} (apiserver https://127.0.0.1:{ports.apiserver}, logs {lay.logs})")

    _start("etcd", b, lay, state)
    _await("etcd", lay, state, lambda: _get(f"http://127.0.0.1:{ports.etcd}/health"), timeout)
    _start("kube-apiserver", b, lay, state)
    _await("kube-apiserver", lay, state, lambda: apiserver_ready(lay, state), timeout)
    for name, port in (
        ("kube-controller-manager", ports.controller_manager),
        ("kube-scheduler", ports.scheduler),
    ):
        _start(name, b, lay, state)
        _await(name, lay, state, _healthz(port), timeout)
    kubectl(lay, "apply", "-f", "-", stdin=components.NODE_MANIFEST)
    kubectl(lay, "apply", "-f", str(b.storage_class))
    node = f"node/{components.NODE_NAME}"
    # kwok v0.8.0 can die at start with "fatal error: concurrent map writes" (its workers register CEL
    # types in one unguarded map, github.com/wzshiming/easycel types.go): seen once here, in session 13.
    # A process that exited is started again, twice at most; one that hangs is still an error.
    for attempt in range(3):
        _start("kwok", b, lay, state)
        try:
            _await("kwok", lay, state, lambda: _node_ready(lay, node), timeout)
            break
        except ClusterError as exc:
            if attempt == 2 or procs.running(state.pids["kwok"], state.exes["kwok"]):
                raise
            say(f"kwok exited at start, starting it again: {str(exc).splitlines()[0]}")
    say(f"up in {time.monotonic() - t0:.1f}s; kubeconfig: {lay.kubeconfig}")
    return state


def _node_ready(lay: Layout, node: str) -> bool:
    try:
        out = kubectl(lay, "get", node, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')
    except ClusterError:
        return False
    return out.strip() == "True"


def down(lay: Layout) -> None:
    """Stop every recorded component by PID (logs, PKI and kubeconfig stay for inspection)."""
    with _locked(lay):
        state = lay.read_state()
        if state is None:
            say(f"no cluster recorded in {lay.root}")
        _stop_all(lay, state)


def status(lay: Layout) -> Sequence[str]:
    """Human-readable lines: each component's PID and liveness, ports, readiness, paths."""
    state = lay.read_state()
    if state is None:
        return [f"no cluster recorded in {lay.root}"]
    lines = [f"{c:<24} pid {state.pids.get(c, '-'):<8} {'running' if ok else 'DOWN'}"
             for c, ok in alive(state).items()]  # fmt: skip
    lines += [
        f"ports: {state.ports}",
        f"apiserver /readyz: {'ok' if apiserver_ready(lay, state) else 'NOT ready'}",
        f"kubeconfig: {lay.kubeconfig}",
        f"logs: {lay.logs}",
    ]
    return lines


def peak_rss_kib(state: State) -> dict[str, int]:
    """Per component: peak RSS (VmHWM, KiB) so far."""
    return {c: procs.vm_hwm_kib(pid) for c, pid in state.pids.items()}
