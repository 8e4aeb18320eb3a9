"""The project's own local Kubernetes (etcd, kube-apiserver, KCM, scheduler, kwok) on 127.0.0.1.

Used by hack/localkube.py (`make cluster-up` / `make cluster-down`) and by tests/e2e/conftest.py.
docs/development.md ("The local cluster") describes components, ports, logs and debugging.
"""

from . import procs
from .cluster import ClusterError, apiserver_ready, down, healthy, kubectl, peak_rss_kib, status, up
from .layout import CONTEXT, Layout, State, default_state_dir

__all__ = [
    "CONTEXT",
    "ClusterError",
    "Layout",
    "State",
    "apiserver_ready",
    "default_state_dir",
    "down",
    "healthy",
    "kubectl",
    "peak_rss_kib",
    "procs",
    "status",
    "up",
]
