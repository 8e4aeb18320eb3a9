"""The user's kubeconfig, as ``kubectl`` reads it: for tools that act AS the user (kubetrove.cli).

The operator uses ``client.load_config`` (kubeconfig, else in-cluster). A user's tool must never fall
back to a pod's ServiceAccount silently, and must honour ``--kubeconfig``, ``--context`` and the
context's namespace exactly as kubectl does, so Kubernetes RBAC judges the user and nobody else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import kubernetes

from kubetrove.k8s.client import KubeClient


class KubeconfigError(Exception):
    """No usable kubeconfig or context; the message says which file or context."""


@dataclass(frozen=True)
class UserSession:
    """A client acting as the kubeconfig's user, and the namespace kubectl would use."""

    kube: KubeClient
    namespace: str
    context: str


def user_session(kubeconfig: str | None, context: str | None, namespace: str | None) -> UserSession:
    """Load ``kubeconfig`` (--kubeconfig, else $KUBECONFIG; else ~/.kube/config) at ``context``."""
    path = kubeconfig or os.path.expanduser("~/.kube/config")
    path = path.split(os.pathsep)[0]  # kubectl merges a list; the first file is enough for us
    if not os.path.isfile(path):
        raise KubeconfigError(f"no kubeconfig at {path} (set --kubeconfig or KUBECONFIG)")
    try:
        contexts, current = kubernetes.config.list_kube_config_contexts(config_file=path)
        chosen: dict[str, Any] | None = current
        if context:
            chosen = next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                names = ", ".join(sorted(c["name"] for c in contexts)) or "none"
                raise KubeconfigError(f"context {context!r} not found in {path} (contexts: {names})")
        if chosen is None:
            raise KubeconfigError(f"{path} has no current context (use --context)")
        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=path, context=chosen["name"], client_configuration=cfg)
    except kubernetes.config.ConfigException as exc:
        raise KubeconfigError(f"{path}: {exc}") from None
    ns = namespace or chosen.get("context", {}).get("namespace") or "default"
    return UserSession(KubeClient(cfg), ns, chosen["name"])
