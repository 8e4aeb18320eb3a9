"""Start, reuse and stop the real node beside a running local control plane.

Start order (each step verified before the next): host setup (bridge, sysctls, isolation rule) ->
the local registry (registry.py; /v2/ answers) with every image of hack/images pushed ->
containerd (private socket; `ctr version` answers) -> CoreDNS (/ready) -> kubelet (Node Ready) ->
kube-proxy (/healthz) -> the two provisioners + their StorageClasses -> the API relay for in-cluster
clients.
Pods pull their images from the registry (containerd's hosts.toml names it); a reused node gets the
current builds pushed, and any tag it holds at an older digest pulled again.
Stop order is the reverse, after the node's pods are deleted so kubelet tears their sandboxes down
through CNI; then leftover tasks are killed, mounts unmounted and host changes undone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import images
from images.push import push
from localcluster import Layout, apiserver_ready, kubectl, procs
from localcluster.cluster import ClusterError

from . import configs, host, imagevolumes, registry
from .layout import (
    BRIDGE_IP,
    COMPONENTS,
    DNS_IP,
    EXPANDABLE_PROVISIONER,
    EXPANDABLE_STORAGE_CLASS,
    NODE_NAME,
    PROVISIONER,
    RUN_DIR,
    STORAGE_CLASS,
    NodeBinaries,
    NodeLayout,
    NodePorts,
    NodeState,
    realnode_dir,
)

IMAGES = tuple(images.RECIPES)  # every image the project builds


def say(msg: str) -> None:
    """Progress line (flushed)."""
    print(f"realnode: {msg}", flush=True)


def layout_for(cluster: Layout) -> NodeLayout:
    """The node layout attached to this cluster."""
    return NodeLayout(realnode_dir(), cluster)


@contextmanager
def _locked(n: NodeLayout) -> Iterator[None]:
    n.root.mkdir(parents=True, exist_ok=True)
    with n.lock_file.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ctr(b: NodeBinaries, n: NodeLayout, *args: str, timeout: float = 600) -> str:
    """`ctr` against our containerd, namespace k8s.io (the CRI plugin's); stdout."""
    argv = [str(b.ctr), "--address", str(n.containerd_socket), "--namespace", "k8s.io", *args]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    if res.returncode != 0:
        raise ClusterError(f"ctr {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def _alive(state: NodeState) -> dict[str, bool]:
    return {c: c in state.pids and procs.running(state.pids[c], state.exes[c]) for c in COMPONENTS}


def _start(name: str, argv: list[str], n: NodeLayout, state: NodeState) -> None:
    state.pids[name] = procs.start(argv, n.log(name))
    state.exes[name] = str(Path(argv[0]).resolve())
    n.write_state(state)  # recorded at once: `down` cleans a half-started node


def _await(name: str, n: NodeLayout, state: NodeState, check: Callable[[], bool], timeout: float) -> None:
    t0 = time.monotonic()
    dead = False

    def done() -> bool:
        nonlocal dead
        dead = not procs.running(state.pids[name], state.exes[name])
        return dead or check()

    if not procs.wait_for(done, timeout, 0.5) or dead:
        why = "exited" if dead else f"not ready after {timeout:.0f}s"
        raise ClusterError(f"{name} {why}; log {n.log(name)}:\n{procs.tail(n.log(name))}")
    say(f"{name} ready ({time.monotonic() - t0:.1f}s)")


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback URL we built)
            return bool(resp.status == 200)
    except OSError:
        return False


def node_ready(cluster: Layout) -> bool:
    """Is the real Node registered and Ready?"""
    try:
        out = kubectl(cluster, "get", f"node/{NODE_NAME}", "-o",
                      'jsonpath={.status.conditions[?(@.type=="Ready")].status}')  # fmt: skip
    except ClusterError:
        return False
    return out.strip() == "True"


def healthy(n: NodeLayout) -> NodeState | None:
    """The recorded state if it belongs to n's cluster, every process runs and the Node is Ready."""
    state = n.read_state()
    if (
        state
        and state.cluster == str(n.cluster.root)
        and all(_alive(state).values())
        and node_ready(n.cluster)
    ):
        return state
    return None


def publish_images(b: NodeBinaries | None, n: NodeLayout, names: tuple[str, ...] = IMAGES) -> None:
    """Build (or find cached) each image and push it to the local registry; if containerd (when b is
    given) holds the tag at another digest, pull it again so the next pod runs the current build."""
    registry.ensure()
    have: dict[str, str] = {}
    if b is not None:
        for line in ctr(b, n, "images", "ls").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 3:
                have[cols[0]] = cols[2]
    pulled = False
    builds = [images.ensure(name) for name in names]  # each takes and releases images.locked()
    with images.locked():
        say(f"registry garbage collection: {registry.garbage_collect()}")
        for built in builds:
            push(built, registry.REPOSITORY)
    for built in builds:
        ref = f"{registry.REPOSITORY}/{built.ref}"
        if b is not None and have.get(ref, built.digest) != built.digest:
            t0 = time.monotonic()
            ctr(b, n, "images", "pull", "--plain-http", "--snapshotter", "overlayfs", ref)
            say(f"pulled {ref} again ({time.monotonic() - t0:.0f}s)")
            pulled = True
    if pulled and b is not None:
        _forget_replaced(b, n)


def _forget_replaced(b: NodeBinaries, n: NodeLayout) -> None:
    """Drop the CRI's by-ID refs (``sha256:<config>``) of images a re-import replaced, so containerd's
    garbage collector frees their layers (each agent rebuild would otherwise keep ~100 MiB)."""
    rows = [line.split() for line in ctr(b, n, "images", "ls").splitlines()[1:] if line.split()]
    named = {cols[2] for cols in rows if not cols[0].startswith("sha256:")}
    stale = [cols[0] for cols in rows if cols[0].startswith("sha256:") and cols[2] not in named]
    if stale:
        ctr(b, n, "images", "rm", *stale)


def _write_configs(b: NodeBinaries, n: NodeLayout, state: NodeState, apiserver_port: int) -> None:
    c = n.cluster
    for d in (n.config, n.cni_conf_dir, n.cni_ipam_dir, n.kubelet_root, n.pod_logs, n.volumes, RUN_DIR):
        d.mkdir(parents=True, exist_ok=True)
    files = {
        n.config / "containerd.toml": configs.containerd_toml(n, b),
        n.cni_conf_dir / "10-kubetrove.conflist": configs.cni_conflist(n),
        n.config / "resolv.conf": f"nameserver {DNS_IP}\n",
        n.config / "kubelet.yaml": configs.kubelet_config(n, state.ports),
        n.config / "kubelet.kubeconfig": configs.client_kubeconfig(
            c, apiserver_port, "kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}"
        ),
        n.config / "kube-proxy.yaml": configs.kube_proxy_config(n, state.ports),
        n.config / "kube-proxy.kubeconfig": configs.client_kubeconfig(
            c, apiserver_port, "kube-proxy", "/CN=system:kube-proxy"
        ),
        n.config / "Corefile": configs.corefile(n, state.ports),
        n.config / "certs.d" / registry.ADDRESS / "hosts.toml": configs.hosts_toml(),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def up(cluster: Layout, *, timeout: float = 180) -> NodeState:
    """Attach the real node to the running cluster (reused if already attached and healthy)."""
    cstate = cluster.read_state()
    if cstate is None or not apiserver_ready(cluster, cstate):
        raise ClusterError(f"no running cluster in {cluster.root}: start it first (localkube up)")
    _check_apiserver_flags(cluster, cstate.pids.get("kube-apiserver"))
    n = layout_for(cluster)
    with _locked(n):
        state = healthy(n)
        if state:
            say(f"reusing the running node {NODE_NAME}")
            b = NodeBinaries.locate()
            publish_images(b, n)  # the agent and operator images follow the current source
            _ensure_apiproxy(b, n, cstate.ports.apiserver)
            return state
        old = n.read_state()
        if old and old.cluster != str(cluster.root) and _other_cluster_alive(old):
            raise ClusterError(
                f"the real node is attached to the running cluster {old.cluster}; run "
                f"`localkube down --dir {old.cluster}` first (one real node per machine)"
            )
        _stop(NodeLayout(n.root, Layout(Path(old.cluster))) if old else n, old)
        try:
            return _boot(n, cstate.ports.apiserver, timeout)
        except BaseException:
            _stop(n, n.read_state())
            raise


def _check_apiserver_flags(cluster: Layout, pid: int | None) -> None:
    """A cluster started before localcluster enabled PodNodeSelector cannot place pods here: say so."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (OSError, TypeError):
        return
    if not any(a.startswith("--enable-admission-plugins=") and "PodNodeSelector" in a for a in argv):
        raise ClusterError(
            f"the apiserver of {cluster.root} lacks PodNodeSelector (an older localcluster started it); "
            f"restart the cluster (localkube down --dir {cluster.root}, then up --real-node)"
        )


def _other_cluster_alive(old: NodeState) -> bool:
    other = Layout(Path(old.cluster))
    ostate = other.read_state()
    return bool(ostate and apiserver_ready(other, ostate))


# The registry's blobs and containerd's content store only grow: every rebuilt image leaves its old layers
# behind (seen: 49 GiB after a day of rebuilds, and a full disk failed every test on the machine). Both
# are caches of what hack/images builds (the build cache keeps the images themselves), so past this size
# they are emptied at a fresh node start and refilled by publish_images (a push and a pull per image).
STORE_LIMIT_GIB = float(os.environ.get("KUBETROVE_IMAGE_STORE_LIMIT_GIB", "16"))


def _trim_image_stores(n: NodeLayout) -> None:
    """Empty the registry's data and containerd's root when together over STORE_LIMIT_GIB.

    Only before containerd starts and while no registry serves (a running one may be another node's
    source; its blobs stay). Invariant: nothing here is the only copy of anything.
    """
    stores = [n.containerd_root] + ([] if registry.serving() else [registry.root() / "data"])
    existing = [p for p in stores if p.exists()]
    total = sum(_disk_bytes(p) for p in existing)
    if total < STORE_LIMIT_GIB * 2**30:
        return
    names = ", ".join(map(str, existing))
    say(f"image stores hold {total / 2**30:.1f} GiB (limit {STORE_LIMIT_GIB:g}): emptying {names}")
    for path in existing:
        shutil.rmtree(path)


def _disk_bytes(root: Path) -> int:
    """Bytes allocated under ``root`` (like du: st_blocks, so sparse files count what they use)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def _boot(n: NodeLayout, apiserver_port: int, timeout: float) -> NodeState:
    t0 = time.monotonic()
    b = NodeBinaries.locate()
    state = NodeState(cluster=str(n.cluster.root), ports=NodePorts())
    n.write_state(state)
    host.setup(state.sysctls)
    n.write_state(state)
    _write_configs(b, n, state, apiserver_port)
    say(f"starting node {NODE_NAME} (containerd {n.containerd_socket}, logs {n.cluster.logs}/realnode-*)")

    _trim_image_stores(n)
    _release_image_volumes(n)  # a crashed node's, if its state was lost (`_stop` did not see them)
    _start("containerd", [str(b.containerd), "--config", str(n.config / "containerd.toml")], n, state)
    _await("containerd", n, state, lambda: _ctr_ok(b, n), timeout)
    # After containerd is up, not before: its content store outlives the node (under the cache), so a tag it
    # kept from an earlier build must be pulled again, or the operator pod ran a stale image (seen: an
    # operator image without the newest spec field refused every resource).
    publish_images(b, n)
    _start("coredns", configs.coredns_argv(b, n), n, state)
    _await(
        "coredns", n, state, lambda: _http_ok(f"http://127.0.0.1:{state.ports.coredns_ready}/ready"), timeout
    )
    _start("kubelet", configs.kubelet_argv(b, n), n, state)
    _await("kubelet", n, state, lambda: node_ready(n.cluster), timeout)
    _start("kube-proxy", configs.kube_proxy_argv(b, n), n, state)
    _await(
        "kube-proxy",
        n,
        state,
        lambda: _http_ok(f"http://127.0.0.1:{state.ports.proxy_healthz}/healthz"),
        timeout,
    )
    _start_provisioner("provisioner", n, state, timeout, STORAGE_CLASS, PROVISIONER)
    _start_provisioner("provisioner-image", n, state, timeout, EXPANDABLE_STORAGE_CLASS,
                       EXPANDABLE_PROVISIONER, expandable=True)  # fmt: skip
    _ensure_apiproxy(b, n, apiserver_port)
    classes = f"{STORAGE_CLASS}, {EXPANDABLE_STORAGE_CLASS}"
    say(f"node {NODE_NAME} up in {time.monotonic() - t0:.1f}s (StorageClasses {classes})")
    return state


def _ensure_apiproxy(b: NodeBinaries, n: NodeLayout, apiserver_port: int) -> None:
    """The `kubernetes` Service reachable from pods: an EndpointSlice naming the bridge address, and
    apiproxy.py relaying it to the loopback API server (its docstring says why). Kept out of the node's
    health check: a node started before it existed gets it on reuse, without a restart."""
    record = n.config / "apiproxy.json"
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        old = json.loads(record.read_text())
        if old["port"] == apiserver_port and procs.running(old["pid"], old["exe"]):
            kubectl(n.cluster, "apply", "-f", "-", stdin=configs.apiserver_slice(apiserver_port))
            return
        procs.stop(old["pid"], old["exe"])
    argv = [sys.executable, str(Path(__file__).resolve().parent / "apiproxy.py"),
            f"--listen={BRIDGE_IP}:{apiserver_port}", f"--target=127.0.0.1:{apiserver_port}"]  # fmt: skip
    pid = procs.start(argv, n.log("apiproxy"))
    exe = str(Path(sys.executable).resolve())
    record.write_text(json.dumps({"pid": pid, "exe": exe, "port": apiserver_port}))
    log = n.log("apiproxy")
    if not procs.wait_for(lambda: "relaying" in log.read_text(), 30, 0.2):
        raise ClusterError(f"apiproxy did not start; log {log}:\n{procs.tail(log)}")
    kubectl(n.cluster, "apply", "-f", "-", stdin=configs.apiserver_slice(apiserver_port))
    say(f"API server reachable from pods at {BRIDGE_IP}:{apiserver_port} (Service kubernetes)")


def _stop_apiproxy(n: NodeLayout) -> None:
    record = n.config / "apiproxy.json"
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
        old = json.loads(record.read_text())
        procs.stop(old["pid"], old["exe"])
    record.unlink(missing_ok=True)


def _ctr_ok(b: NodeBinaries, n: NodeLayout) -> bool:
    try:
        ctr(b, n, "version", timeout=5)
    except (ClusterError, subprocess.TimeoutExpired):
        return False
    return True


def _start_provisioner(
    name: str,
    n: NodeLayout,
    state: NodeState,
    timeout: float,
    sc: str,
    provisioner: str,
    expandable: bool = False,
) -> None:
    """Start provisioner.py for StorageClass `sc` (image volumes when expandable); create the class."""
    argv = [
        sys.executable,
        str(Path(__file__).resolve().parent / "provisioner.py"),
        f"--kubeconfig={n.cluster.kubeconfig}",
        f"--volumes={n.image_volumes if expandable else n.volumes}",
        f"--node={NODE_NAME}",
        f"--storage-class={sc}",
        f"--provisioner={provisioner}",
        *(["--image-volumes"] if expandable else []),
    ]
    _start(name, argv, n, state)
    kubectl(n.cluster, "apply", "-f", "-", stdin=configs.storage_class(sc, provisioner, expandable))
    _await(name, n, state, lambda: "watching" in n.log(name).read_text(), timeout)


def _release_image_volumes(n: NodeLayout) -> None:
    released = imagevolumes.release_all(n.image_volumes)
    if released:
        say(f"released {len(released)} image volume mount(s)/loop device(s): {', '.join(released[:4])}")


def _drain(n: NodeLayout, state: NodeState) -> None:
    """Delete the node's pods while kubelet runs, so it stops their sandboxes through CNI (no leaks)."""
    cstate = n.cluster.read_state()
    if not (cstate and apiserver_ready(n.cluster, cstate) and _alive(state).get("kubelet")):
        return
    with contextlib.suppress(ClusterError):
        kubectl(n.cluster, "cordon", NODE_NAME)
        on_node = f"spec.nodeName={NODE_NAME}"
        kubectl(
            n.cluster, "delete", "pods", "-A", "--field-selector", on_node, "--grace-period=1", "--wait=false"
        )
    b = NodeBinaries.locate()
    procs.wait_for(lambda: not _running_tasks(b, n), 45, 1.0)


def _running_tasks(b: NodeBinaries, n: NodeLayout) -> list[str]:
    try:
        out = ctr(b, n, "tasks", "ls", timeout=10)
    except (ClusterError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in out.splitlines()[1:] if line.split()]


def _kill_tasks(b: NodeBinaries, n: NodeLayout) -> None:
    """Last resort for tasks kubelet did not stop: kill and delete them and their containers."""
    for task in _running_tasks(b, n):
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            ctr(b, n, "tasks", "kill", "--signal", "SIGKILL", task, timeout=10)
    time.sleep(1)
    for task in _running_tasks(b, n):
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            ctr(b, n, "tasks", "delete", "--force", task, timeout=10)
    with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
        for cid in ctr(b, n, "containers", "ls", "-q", timeout=10).split():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                ctr(b, n, "containers", "delete", cid, timeout=10)


def _stop(n: NodeLayout, state: NodeState | None) -> None:
    if state is None:
        return
    _drain(n, state)
    _stop_apiproxy(n)
    for name in ("provisioner-image", "provisioner", "kube-proxy", "kubelet", "coredns"):
        if name in state.pids and procs.stop(state.pids[name], state.exes[name]):
            say(f"stopped {name} (pid {state.pids[name]})")
    if state.pids.get("containerd") and procs.running(state.pids["containerd"], state.exes["containerd"]):
        with contextlib.suppress(FileNotFoundError):
            _kill_tasks(NodeBinaries.locate(), n)
        procs.stop(state.pids["containerd"], state.exes["containerd"])
        say(f"stopped containerd (pid {state.pids['containerd']})")
    unmounted = host.unmount_all(n)
    if unmounted:
        say(f"unmounted {len(unmounted)} leftover mount(s): {', '.join(unmounted[:3])}")
    _release_image_volumes(n)
    host.teardown(state.sysctls)
    n.state_file.unlink(missing_ok=True)
    registry.stop()


def down(cluster: Layout | None = None) -> None:
    """Stop the real node and undo its host changes: if attached to `cluster` (any cluster if None)."""
    n = layout_for(cluster or Layout(realnode_dir()))
    with _locked(n):
        state = n.read_state()
        if state is None or (cluster is not None and state.cluster != str(cluster.root)):
            return
        _stop(NodeLayout(n.root, Layout(Path(state.cluster))), state)


def status(cluster: Layout) -> list[str]:
    """Human-readable lines: each process and the Node's readiness."""
    n = layout_for(cluster)
    state = n.read_state()
    if state is None or state.cluster != str(cluster.root):
        return ["realnode: not attached to this cluster"]
    lines = [f"realnode {c:<16} pid {state.pids.get(c, '-'):<8} {'running' if ok else 'DOWN'}"
             for c, ok in _alive(state).items()]  # fmt: skip
    lines.append(f"realnode attached to {state.cluster}; node {NODE_NAME} Ready: {node_ready(cluster)}")
    lines.append(json.dumps({"ports": state.ports.__dict__}))
    return lines
