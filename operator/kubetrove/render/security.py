"""Security contexts meeting the Pod Security Standard "restricted" for every container we run.

https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted requires, per pod or
container: runAsNonRoot, seccompProfile RuntimeDefault (or Localhost), allowPrivilegeEscalation false,
capabilities drop ALL. On top: a read-only root filesystem wherever the engine allows it (writable paths
are explicit emptyDirs), and the engine's own uid/gid so the data volume (fsGroup) is writable.
"""

from __future__ import annotations

from typing import Any

from kubetrove.datastores.base import EngineContainer


def pod_security_context(engine: EngineContainer) -> dict[str, Any]:
    """Pod-level: every container runs as the engine's user, so the agent can read the data volume."""
    return {
        "runAsNonRoot": True,
        "runAsUser": engine.run_as_user,
        "runAsGroup": engine.run_as_group,
        "fsGroup": engine.run_as_group,
        # Recursive chown only when the volume root does not match yet: big volumes start fast.
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(*, read_only_root_filesystem: bool) -> dict[str, Any]:
    """Container-level settings the "restricted" profile demands (repeated per container, explicitly)."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": read_only_root_filesystem,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
