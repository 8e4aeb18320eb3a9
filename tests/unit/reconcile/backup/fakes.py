"""A fake agent (the backup routes' semantics, in memory) and the objects a backup needs in a FakeKube."""

from __future__ import annotations

import base64
from typing import Any

from kubetrove.agent.client import AgentError
from kubetrove.agent.protocol import BackupPhase, BackupReply, BackupRequest, BackupTarget, ErrorReply, Ok
from tests.unit.reconcile.fake_kube import FakeKube

NS = "ns"
BUCKET_SECRET = "s3-creds"
STORAGE = {"s3": {"bucket": "b", "endpoint": "http://s3", "credentialsSecretRef": BUCKET_SECRET}}


class FakeAgent:
    """POST is idempotent per id; GET 404s for unknown ids; ``forget`` simulates an agent restart."""

    def __init__(self) -> None:
        self.backups: dict[str, BackupReply] = {}
        self.requests: list[BackupRequest] = []
        self.urls: list[str] = []
        self.deleted: list[tuple[str, BackupTarget]] = []
        self.refuse: AgentError | None = None

    def __call__(self, url: str, token: str) -> FakeAgent:
        assert token == "agent-token"
        self.urls.append(url)
        return self

    async def close(self) -> None:
        return None

    async def get_backup(self, backup_id: str) -> BackupReply:
        if backup_id not in self.backups:
            raise AgentError(404, ErrorReply(error="not_found", detail=backup_id))
        return self.backups[backup_id]

    async def start_backup(self, request: BackupRequest) -> BackupReply:
        if self.refuse is not None:
            raise self.refuse
        self.requests.append(request)
        return self.backups.setdefault(
            request.id,
            BackupReply(
                id=request.id,
                phase=BackupPhase.RUNNING,
                engine="mariadb",
                method=request.method,
                tool="mariabackup",
                engine_version="10.11.16-MariaDB",
                started_at="2026-01-02T03:04:05Z",
                location=f"s3://b/{request.id}/",
            ),
        )

    async def delete_backup(self, backup_id: str, target: BackupTarget) -> Ok:
        self.deleted.append((backup_id, target))
        return Ok()

    def finish(self, backup_id: str, **changes: Any) -> None:
        """The agent's run ends (Completed unless ``phase`` says otherwise)."""
        done = {
            "phase": BackupPhase.COMPLETED,
            "completed_at": "2026-01-02T03:05:05Z",
            "size_bytes": 1234,
            "sha256": "ab" * 32,
            "position": "0-1-42",
            "throughput_mib_per_s": 50.0,
            **changes,
        }
        self.backups[backup_id] = BackupReply.model_validate({**self.backups[backup_id].model_dump(), **done})

    def forget(self) -> None:
        """The agent restarted: it knows no backup any more."""
        self.backups.clear()


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
