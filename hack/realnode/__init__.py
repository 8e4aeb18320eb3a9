"""A real node beside the local control plane: containerd + runc, kubelet, kube-proxy, CoreDNS, a local
volume provisioner, and locally built images (hack/images), so pods really run.

Used by `hack/localkube.py up --real-node` (and `down`), by `make demo` and by tests/e2e/realnode/.
Facts it relies on are in /work/shared/notes/local-cluster.md §5 (cgroup v1, no systemd, Debian
containerd 1.6 + runc, no registry).
"""

from .layout import (
    BRIDGE_IP,
    NODE_LABELS,
    NODE_NAME,
    POD_CIDR,
    REAL_NODE_ANNOTATIONS,
    STORAGE_CLASS,
    NodeLayout,
    realnode_dir,
)
from .node import down, healthy, import_images, layout_for, node_ready, status, up

__all__ = [
    "BRIDGE_IP",
    "NODE_LABELS",
    "NODE_NAME",
    "POD_CIDR",
    "REAL_NODE_ANNOTATIONS",
    "STORAGE_CLASS",
    "NodeLayout",
    "down",
    "healthy",
    "import_images",
    "layout_for",
    "node_ready",
    "realnode_dir",
    "status",
    "up",
]
