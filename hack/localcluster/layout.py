"""Where the local cluster's binaries, state, logs and kubeconfig live, and which ports it uses."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

HACK = Path(__file__).resolve().parent.parent
CONTEXT = "kubetrove-local"  # the kubeconfig context name e2e fixtures insist on
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


def cache_root() -> Path:
    """The shared build cache (same variable as hack/build-*.sh)."""
    return Path(os.environ.get("KUBETROVE_CACHE", Path.home() / ".cache" / "kubetrove"))


def default_state_dir() -> Path:
    """The state dir of the developer's `make cluster-up` cluster."""
    return Path(os.environ.get("KUBETROVE_LOCALKUBE_DIR", cache_root() / "localkube"))


def pinned_version(script: str, var: str) -> str:
    """The version a build script pins (``VAR="${VAR:-vX}"``), so Python and bash never drift."""
    if os.environ.get(var):
        return os.environ[var]
    text = (HACK / script).read_text()
    found = re.search(rf'^{var}="\$\{{{var}:-([^}}]+)\}}"', text, re.MULTILINE)
    if not found:
        raise RuntimeError(f"cannot find the pinned {var} in hack/{script}")
    return found.group(1)


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every executable the cluster runs."""

    etcd: Path
    apiserver: Path
    controller_manager: Path
    scheduler: Path
    kubectl: Path
    kwok: Path
    kwok_stages: Path  # kwok v0.8 Stage documents (node, pod, volume), assembled by build-kwok.sh
    storage_class: Path  # kwok's default StorageClass `kwok-volume`

    @classmethod
    def locate(cls) -> Binaries:
        """Find the cached builds; raise with the command that builds a missing one."""
        k8s = cache_root() / f"k8s-{pinned_version('build-k8s.sh', 'K8S_VERSION')}"
        kwok = cache_root() / f"kwok-{pinned_version('build-kwok.sh', 'KWOK_VERSION')}"
        etcd = cache_root() / f"etcd-{pinned_version('build-etcd.sh', 'ETCD_VERSION')}" / "etcd"
        found = cls(
            etcd=Path(os.environ.get("KUBETROVE_ETCD", etcd)),
            apiserver=k8s / "kube-apiserver",
            controller_manager=k8s / "kube-controller-manager",
            scheduler=k8s / "kube-scheduler",
            kubectl=k8s / "kubectl",
            kwok=kwok / "kwok",
            kwok_stages=kwok / "stages.yaml",
            storage_class=kwok / "storage-class.yaml",
        )
        missing = [str(p) for p in asdict(found).values() if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"missing {', '.join(missing)}: run `make setup` (hack/build-*.sh)")
        return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ports:
    """Loopback ports of one cluster: free ones picked at `up` (the apiserver's can be pinned)."""

    etcd: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)
    controller_manager: int = field(default_factory=free_port)
    scheduler: int = field(default_factory=free_port)
    kwok: int = field(default_factory=free_port)


@dataclass
class State:
    """What `up` recorded: ports and, per component, the PID and the executable it runs."""

    ports: Ports
    pids: dict[str, int] = field(default_factory=dict)
    exes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise for state.json."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> State:
        """Parse state.json."""
        raw = json.loads(text)
        return cls(ports=Ports(**raw["ports"]), pids=raw["pids"], exes=raw["exes"])


@dataclass(frozen=True)
class Layout:
    """Every path inside one cluster's state directory."""

    root: Path

    @property
    def pki(self) -> Path:
        """Certificates and keys (openssl-generated, local CA)."""
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        """etcd's data dir (throw-away)."""
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        """One <component>.log per process."""
        return self.root / "logs"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig (context `kubetrove-local`)."""
        return self.root / "admin.kubeconfig"

    @property
    def state_file(self) -> Path:
        """Ports and PIDs of the running cluster."""
        return self.root / "state.json"

    @property
    def lock_file(self) -> Path:
        """flock'ed by `up`/`down` so two sessions never start one cluster twice."""
        return self.root / ".lock"

    def log(self, component: str) -> Path:
        """A component's log file."""
        return self.logs / f"{component}.log"

    def read_state(self) -> State | None:
        """The recorded state, if any."""
        try:
            return State.from_json(self.state_file.read_text())
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def write_state(self, state: State) -> None:
        """Persist the state atomically."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.to_json())
        tmp.replace(self.state_file)
