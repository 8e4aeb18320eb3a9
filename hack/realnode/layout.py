"""Names, addresses, paths and binaries of the real node (one per machine).

Why one per machine: kube-proxy's iptables chains, the CNI bridge and containerd's CRI plugin are
host-wide. Machine-wide state (containerd's image store, kubelet's root dir) lives in the realnode dir;
what belongs to one cluster (kubeconfigs, local volumes) lives in that cluster's state dir.
Every address is loopback or on the private bridge; nothing listens on the host's real interfaces.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localcluster.layout import Layout, cache_root, free_port, pinned_version

NODE_NAME = "kubetrove-real-0"
NODE_LABELS = {"kubetrove.io/node": "real"}
# Tainted, so kwok-tier workloads never land here. A namespace with REAL_NODE_ANNOTATIONS runs all
# its pods here: the PodNodeSelector and PodTolerationRestriction admission plugins add the selector
# and the toleration to every pod in it.
NODE_TAINT = "kubetrove.io/node=real:NoSchedule"
REAL_NODE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": "kubetrove.io/node=real",
    "scheduler.alpha.kubernetes.io/defaultTolerations": (
        '[{"key": "kubetrove.io/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}]'
    ),
}
BRIDGE = "kt-cni0"
POD_CIDR = "10.85.0.0/24"
BRIDGE_IP = "10.85.0.1"  # the pods' gateway; also the node IP, the kubelet's and CoreDNS' address
DNS_IP = BRIDGE_IP  # CoreDNS runs as a host process on the bridge (it reads the API on loopback)
CLUSTER_DOMAIN = "cluster.local"
STORAGE_CLASS = "kubetrove-local"
PROVISIONER = "kubetrove.io/local-dir"
# Volumes that fill up at their size and grow online when their claim asks for more (imagevolumes.py):
# a second provisioner process, its own name, allowVolumeExpansion.
EXPANDABLE_STORAGE_CLASS = "kubetrove-expandable"
EXPANDABLE_PROVISIONER = "kubetrove.io/local-image"
RUN_DIR = Path("/run/kubetrove-realnode")  # short: containerd's unix socket paths have a length limit
COMPONENTS = ("containerd", "coredns", "kubelet", "kube-proxy", "provisioner", "provisioner-image")


def realnode_dir() -> Path:
    """Machine-wide state of the real node."""
    return Path(os.environ.get("KUBETROVE_REALNODE_DIR", cache_root() / "realnode"))


@dataclass(frozen=True)
class NodeBinaries:
    """Every executable the node runs; `locate` names the command that provides a missing one."""

    kubelet: Path
    kube_proxy: Path
    coredns: Path
    containerd: Path
    ctr: Path
    runc: Path
    cni_bin: Path

    @classmethod
    def locate(cls) -> NodeBinaries:
        """Find the builds and apt binaries; raise FileNotFoundError with what to run."""
        k8s = cache_root() / f"k8s-{pinned_version('build-k8s.sh', 'K8S_VERSION')}"
        dns = cache_root() / f"coredns-{pinned_version('realnode/build-coredns.sh', 'COREDNS_VERSION')}"
        found = cls(
            kubelet=k8s / "kubelet",
            kube_proxy=k8s / "kube-proxy",
            coredns=dns / "coredns",
            containerd=Path(shutil.which("containerd") or "/usr/bin/containerd"),
            ctr=Path(shutil.which("ctr") or "/usr/bin/ctr"),
            runc=Path(shutil.which("runc") or "/usr/sbin/runc"),
            cni_bin=Path("/usr/lib/cni"),
        )
        missing = [str(p) for p in asdict(found).values() if not Path(p).exists()]
        tools = ("iptables", "conntrack", "mmdebstrap", "ip", "losetup", "mkfs.xfs", "xfs_growfs")
        missing += [t for t in tools if not shutil.which(t)]
        if not (found.cni_bin / "bridge").is_file():
            missing.append(str(found.cni_bin / "bridge"))
        if missing:
            raise FileNotFoundError(
                f"missing {', '.join(missing)}: run `make setup` (hack/setup.d/70-realnode.sh)"
            )
        return found


@dataclass
class NodePorts:
    """Loopback/bridge ports picked at `up`."""

    kubelet: int = field(default_factory=free_port)
    kubelet_healthz: int = field(default_factory=free_port)
    proxy_healthz: int = field(default_factory=free_port)
    proxy_metrics: int = field(default_factory=free_port)
    coredns_health: int = field(default_factory=free_port)
    coredns_ready: int = field(default_factory=free_port)


@dataclass
class NodeState:
    """What `up` recorded: the cluster attached to, ports, PIDs and executables, saved sysctls."""

    cluster: str
    ports: NodePorts
    pids: dict[str, int] = field(default_factory=dict)
    exes: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)  # values before `up` changed them

    def to_json(self) -> str:
        """Serialise."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> NodeState:
        """Parse."""
        raw = json.loads(text)
        return cls(
            cluster=raw["cluster"],
            ports=NodePorts(**raw["ports"]),
            pids=raw["pids"],
            exes=raw["exes"],
            sysctls=raw.get("sysctls", {}),
        )


@dataclass(frozen=True)
class NodeLayout:
    """Paths of the real node, for the cluster whose Layout is `cluster`."""

    root: Path
    cluster: Layout

    @property
    def state_file(self) -> Path:
        """PIDs and ports of the running node."""
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        """flock'ed by up/down."""
        return self.root / ".lock"

    @property
    def containerd_root(self) -> Path:
        """containerd's persistent root (content store, snapshots): imported images survive restarts."""
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        """containerd's runtime state (tasks, shim sockets)."""
        return RUN_DIR / "containerd"

    @property
    def containerd_socket(self) -> Path:
        """The CRI/containerd API socket (never /run/containerd: that is the host's default)."""
        return RUN_DIR / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        """kubelet's --root-dir (pods, volumes, its serving cert)."""
        return self.root / "kubelet"

    @property
    def pod_logs(self) -> Path:
        """kubelet's podLogsDir (instead of /var/log/pods)."""
        return self.root / "pod-logs"

    @property
    def cni_conf_dir(self) -> Path:
        """The CNI conflist containerd reads."""
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        """host-local's allocations (instead of /var/lib/cni/networks)."""
        return self.root / "cni" / "ipam"

    @property
    def config(self) -> Path:
        """Generated config files (containerd, kubelet, kube-proxy, Corefile, kubeconfigs)."""
        return self.cluster.root / "realnode"

    @property
    def volumes(self) -> Path:
        """Local directories behind the cluster's PersistentVolumes (the cluster's lifetime)."""
        return self.cluster.root / "realnode-volumes"

    @property
    def image_volumes(self) -> Path:
        """The expandable class's images and their mount points (its provisioner acts only in here)."""
        return self.volumes / "images"

    def log(self, component: str) -> Path:
        """A component's log, beside the control plane's."""
        return self.cluster.logs / f"realnode-{component}.log"

    def read_state(self) -> NodeState | None:
        """The recorded state, if any."""
        try:
            return NodeState.from_json(self.state_file.read_text())
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def write_state(self, state: NodeState) -> None:
        """Persist atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)
