"""Facts about a pod as the API server reports it, each rule written once."""

from __future__ import annotations

from typing import Any

from kubetrove.k8s.port import Obj


def ordinal(pod: Obj) -> int:
    """The member number of a StatefulSet pod (``<name>-<ordinal>``)."""
    return int(pod["metadata"]["name"].rsplit("-", 1)[1])


def is_ready(pod: Obj) -> bool:
    """True when the pod's Ready condition is True."""
    conditions: list[dict[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def is_terminating(pod: Obj) -> bool:
    """True once the pod is being deleted (it still reports Ready until its containers stop)."""
    return bool(pod["metadata"].get("deletionTimestamp"))


def pod_ip(pod: Obj) -> str | None:
    """The pod's IP, or None before the kubelet has reported one."""
    return (pod.get("status") or {}).get("podIP") or None
