"""Custom resources the CLI creates or patches, built from its flags (pure: no I/O).

The manifests go through the same CRD schema and operator validation as ``kubectl apply``; the CLI
checks only what a flag parser must (a known engine, a catalog version) so its errors come early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetrove.api.common import API_VERSION
from kubetrove.api.resources import BACKUP, CLUSTER, INSTANCE, Kind


@dataclass(frozen=True)
class CreateRequest:
    """What ``kubectl trove create`` was asked for."""

    name: str
    namespace: str
    engine: str
    version: str
    replicas: int | None = None  # None or 1 without --cluster: a DatabaseInstance
    cluster: bool = False
    storage: str | None = None
    cpu: str | None = None
    memory: str | None = None
    databases: tuple[str, ...] = ()
    users: tuple[tuple[str, str, str], ...] = ()  # (name, database, privilege)
    restore_from: str | None = None


def kind_for(request: CreateRequest) -> Kind:
    """A cluster when asked for one or for more than one member; else an instance."""
    return CLUSTER if request.cluster or (request.replicas or 1) > 1 else INSTANCE


def create_manifest(request: CreateRequest) -> dict[str, Any]:
    """The DatabaseInstance or DatabaseCluster for ``request``."""
    kind = kind_for(request)
    spec: dict[str, Any] = {"datastore": {"type": request.engine, "version": request.version}}
    if kind is CLUSTER and request.replicas is not None:
        spec["replicas"] = request.replicas
    if request.storage:
        spec["storage"] = {"size": request.storage}
    requests = {k: v for k, v in (("cpu", request.cpu), ("memory", request.memory)) if v}
    if requests:
        # Memory is also the limit: a database over its request is the first thing the node kills.
        spec["resources"] = {"requests": requests}
        if request.memory:
            spec["resources"]["limits"] = {"memory": request.memory}
    databases = list(dict.fromkeys([*request.databases, *(db for _, db, _ in request.users if db)]))
    if databases:
        spec["databases"] = [{"name": d} for d in databases]
    if request.users:
        spec["users"] = [
            {"name": u, "grants": [{"database": db, "privileges": [priv]}] if db else []}
            for u, db, priv in request.users
        ]
    if request.restore_from:
        spec["restoreFrom"] = {"backup": request.restore_from}
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": request.name, "namespace": request.namespace},
        "spec": spec,
    }


def parse_user(text: str) -> tuple[str, str, str]:
    """``NAME[:DATABASE[:PRIVILEGE]]`` (privilege read, readWrite or admin; default readWrite)."""
    parts = text.split(":")
    if not parts[0] or len(parts) > 3:
        raise ValueError(f"--user {text!r}: expected NAME[:DATABASE[:PRIVILEGE]]")
    name, db, priv = parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "readWrite"
    if priv not in ("read", "readWrite", "admin"):
        raise ValueError(f"--user {text!r}: privilege must be read, readWrite or admin, not {priv!r}")
    return name, db, priv


def backup_manifest(source: dict[str, Any], name: str, method: str = "auto") -> dict[str, Any]:
    """A DatabaseBackup of ``source`` (a live DatabaseInstance or DatabaseCluster), to its own storage."""
    meta = source["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": BACKUP.kind,
        "metadata": {"name": name, "namespace": meta["namespace"]},
        "spec": {"source": {"kind": source["kind"], "name": meta["name"]}, "method": method},
    }


def restore_manifest(
    backup: dict[str, Any], source: dict[str, Any] | None, name: str, cluster: bool | None = None
) -> dict[str, Any]:
    """A NEW resource restored from ``backup``: the source's engine, version, size and shape by default.

    ``source`` is the backed-up resource when it still exists (its storage size and replicas are copied:
    a restore into a smaller volume fails); without it the backup's status says engine and version.
    """
    status = backup.get("status") or {}
    src_spec = (source or {}).get("spec") or {}
    datastore = src_spec.get("datastore") or {
        "type": status.get("engine"),
        "version": status.get("engineVersion"),
    }
    if not datastore.get("type") or not datastore.get("version"):
        raise ValueError(f"DatabaseBackup {backup['metadata']['name']} names no engine and version yet")
    from_cluster = backup["spec"]["source"]["kind"] == CLUSTER.kind
    kind = CLUSTER if (from_cluster if cluster is None else cluster) else INSTANCE
    spec: dict[str, Any] = {"datastore": {"type": datastore["type"], "version": str(datastore["version"])}}
    for key in ("storage", "resources"):
        if key in src_spec:
            spec[key] = src_spec[key]
    if kind is CLUSTER and "replicas" in src_spec:
        spec["replicas"] = src_spec["replicas"]
    spec["restoreFrom"] = {"backup": backup["metadata"]["name"]}
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": backup["metadata"]["namespace"]},
        "spec": spec,
    }


def switchover_patch(pod: str) -> dict[str, Any]:
    """The merge patch of a declarative switchover (``spec.primary``)."""
    return {"spec": {"primary": pod}}
