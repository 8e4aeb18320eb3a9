"""Host-wide pieces of the real node: the bridge, two sysctls, an isolation rule, and cleanup.

Invariants:
- Service IPs route to the bridge, so host-to-Service traffic never takes the default route;
- pod traffic stays on this machine: the chain KUBETROVE-ISOLATE (jumped to first from FORWARD) drops
  anything from the pod network that is not for the pod network or the service network;
- `teardown` undoes what `setup` and the running node did: the rule, kube-proxy's and CNI's chains, the
  bridge, the sysctls `setup` changed (restored to the recorded values), and every mount under the
  node's directories (pod volumes, overlay rootfs, shm, netns), so `down` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from pathlib import Path

from .layout import BRIDGE, BRIDGE_IP, POD_CIDR, RUN_DIR, NodeLayout

SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables")
ISOLATE = "KUBETROVE-ISOLATE"
SERVICE_CIDR = "10.0.0.0/24"  # localcluster's --service-cluster-ip-range


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)  # noqa: S603


def _ipt(*args: str, check: bool = True) -> bool:
    return _run("iptables", "-w", *args, check=check).returncode == 0


def setup(saved: dict[str, str]) -> None:
    """Bridge up with the gateway address; forwarding and bridge netfilter on (old values into saved)."""
    for key in SYSCTLS:
        path = Path("/proc/sys") / key
        saved.setdefault(key, path.read_text().strip())
        path.write_text("1")
    if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
    addrs = _run("ip", "-4", "-o", "addr", "show", "dev", BRIDGE).stdout
    if f"{BRIDGE_IP}/" not in addrs:
        _run("ip", "addr", "add", f"{BRIDGE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # ClusterIPs route to the bridge: kube-proxy's DNAT then picks the pod. Without this route the
    # first lookup says the default interface, and setup.d/05-egress-guard.sh refuses the packet (filter
    # OUTPUT sees the pre-DNAT interface); with it, a Service IP never even looks like outside traffic.
    _run("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE, "src", BRIDGE_IP)
    if not _ipt("-L", ISOLATE, "-n", check=False):
        _ipt("-N", ISOLATE)
    _ipt("-F", ISOLATE)
    _ipt("-A", ISOLATE, "-s", POD_CIDR, "-d", POD_CIDR, "-j", "RETURN")
    _ipt("-A", ISOLATE, "-s", POD_CIDR, "-d", SERVICE_CIDR, "-j", "RETURN")
    _ipt("-A", ISOLATE, "-s", POD_CIDR, "-j", "DROP")
    if not _ipt("-C", "FORWARD", "-j", ISOLATE, check=False):
        _ipt("-I", "FORWARD", "1", "-j", ISOLATE)


def _chains(tool: str, table: str) -> list[str]:
    out = _run(tool, "-w", "-t", table, "-S", check=False).stdout.splitlines()
    return [line.split()[1] for line in out if line.startswith("-N ")]


def _flush_chains(prefixes: tuple[str, ...]) -> None:
    """Delete every jump into chains named with these prefixes, then the chains (IPv4 and IPv6)."""
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            ours = [c for c in _chains(tool, table) if c.startswith(prefixes)]
            if not ours:
                continue
            for rule in _run(tool, "-w", "-t", table, "-S", check=False).stdout.splitlines():
                parts = shlex.split(rule)  # comments are quoted: "kubernetes service portals"
                if parts[:1] == ["-A"] and parts[1] not in ours and any(c in parts for c in ours):
                    _run(tool, "-w", "-t", table, "-D", *parts[1:], check=False)
            for verb in ("-F", "-X"):
                for chain in ours:
                    _run(tool, "-w", "-t", table, verb, chain, check=False)


def mounts_under(roots: list[Path]) -> list[str]:
    """Mount points below any of roots (deepest first, so children unmount before parents)."""
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].encode().decode("unicode_escape")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            points.append(point)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def unmount_all(n: NodeLayout) -> list[str]:
    """Unmount every mount under the node's dirs (lazily if busy); the mount points."""
    points = mounts_under([n.kubelet_root, n.containerd_root, RUN_DIR, Path("/run/netns"), n.volumes])
    for point in points:
        if point.startswith("/run/netns/") and not Path(point).name.startswith("cni-"):
            continue  # someone else's network namespace
        if _run("umount", point, check=False).returncode != 0:
            _run("umount", "-l", point, check=False)
        if point.startswith("/run/netns/cni-"):
            with contextlib.suppress(OSError):
                Path(point).unlink()
    return points


def teardown(saved: dict[str, str]) -> None:
    """Remove chains (ours, kube-proxy's, CNI's), the bridge, and restore the sysctls."""
    if _ipt("-C", "FORWARD", "-j", ISOLATE, check=False):
        _ipt("-D", "FORWARD", "-j", ISOLATE, check=False)
    _flush_chains(("KUBE-", "CNI-", ISOLATE))
    _run("ip", "link", "del", BRIDGE, check=False)
    for key, value in saved.items():
        with contextlib.suppress(OSError):
            (Path("/proc/sys") / key).write_text(value)
