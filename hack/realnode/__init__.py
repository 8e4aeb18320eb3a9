"""A real node beside the local control plane: containerd + runc, kubelet, kube-proxy, CoreDNS, a local
volume provisioner, and locally built images (hack/images), so pods really run.

Used by `hack/localkube.py up --real-node` (and `down`), by `make demo` and by tests/e2e/realnode/.
Facts it relies on are in /work/shared/notes/local-cluster.md §5 (cgroup v1, no systemd, Debian
containerd 1.6 + runc). Images come from the local registry (registry.py) that hack/images pushes to.
"""

from .layout import (
    BRIDGE_IP,
    EXPANDABLE_STORAGE_CLASS,
    NODE_LABELS,
    NODE_NAME,
    POD_CIDR,
    REAL_NODE_ANNOTATIONS,
    STORAGE_CLASS,
    NodeLayout,
    realnode_dir,
)
from .node import down, healthy, layout_for, node_ready, publish_images, status, up

__all__ = [
    "BRIDGE_IP",
    "EXPANDABLE_STORAGE_CLASS",
    "NODE_LABELS",
    "NODE_NAME",
    "POD_CIDR",
    "REAL_NODE_ANNOTATIONS",
    "STORAGE_CLASS",
    "NodeLayout",
    "down",
    "healthy",
    "layout_for",
    "node_ready",
    "publish_images",
    "realnode_dir",
    "status",
    "up",
]
