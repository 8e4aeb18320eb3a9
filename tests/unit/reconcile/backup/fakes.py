"""The objects a backup needs in a FakeKube (the agents are tests/unit/fake_agents.py)."""

from __future__ import annotations

import base64
from typing import Any

from tests.unit.reconcile.fake_kube import FakeKube

NS = "ns"
BUCKET_SECRET = "s3-creds"
STORAGE = {"s3": {"bucket": "b", "endpoint": "http://s3", "credentialsSecretRef": BUCKET_SECRET}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def source(kind: str = "DatabaseInstance", name: str = "db", **spec: Any) -> dict[str, Any]:
    """A source resource with backup storage."""
    full = {
        "datastore": {"type": "mariadb", "version": "10.11"},
        "storage": {"size": "1Gi"},
        "backup": {"storage": STORAGE},
        **spec,
    }
    if kind == "DatabaseCluster":
        full.setdefault("replicas", 3)
    return {
        "apiVersion": "kubetrove.io/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": full,
    }


def pod(name: str, owner: str = "db", role: str | None = None, ready: bool = True) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "mariadb",
        "app.kubernetes.io/instance": owner,
        "app.kubernetes.io/managed-by": "kubetrove",
    }
    if role:
        labels["kubetrove.io/role"] = role
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "status": {
            "podIP": f"10.0.0.{len(name)}",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def backup(name: str = "bk", source_name: str = "db", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubetrove.io/v1alpha1",
        "kind": "DatabaseBackup",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "creationTimestamp": "2026-01-02T03:04:00Z",
        },
        "spec": {"source": {"kind": "DatabaseInstance", "name": source_name}, **spec},
    }


def seed(kube: FakeKube, *objects: dict[str, Any]) -> None:
    """The source's Secrets plus ``objects``."""
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": BUCKET_SECRET, "namespace": NS},
            "data": {"AWS_ACCESS_KEY_ID": b64("AK"), "AWS_SECRET_ACCESS_KEY": b64("SK")},
        }
    )
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-agent-token", "namespace": NS},
            "data": {"token": b64("agent-token")},
        }
    )
    for obj in objects:
        kube.put(obj)
