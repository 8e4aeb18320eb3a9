"""``spec.restoreFrom``, the rules: is the DatabaseBackup usable for a new resource, and the RestoreRequest
the init container gets.

The Restore phase (reconcile/phases/restore.py) applies them to a NEW resource only (no StatefulSet yet:
restoreFrom applies at creation). Any problem -> InvalidSpec naming it (run.reconcile writes Failed/Invalid
and a Warning Event, and no child is created). When the backup is usable, the RestoreRequest (target with
credentials, engine, major, data dir) is written to the restore Secret that render mounts into the init
container (``kubetrove-agent restore --request-file``) and the agent sidecar (``--restore-request``); the
agent verifies every checksum again before touching data. A physical backup is restored by the init
container before the engine starts; a logical one is loaded by the agent into the running engine, which
stays out of readiness until then (agent/backup/restore_gate.py). A DatabaseCluster refuses a logical
backup (not supported yet): only its primary may load it (a load on every member would give each its own
GTID/LSN history), and its replicas would have to stay out of the Services until replication has carried
the whole load to them, which a member's agent cannot know on its own.

Credentials: a physical backup holds the engine's own accounts, so the restored data keeps the SOURCE's
admin password (MariaDB's root, PostgreSQL's postgres). The new resource's credentials Secret is therefore
created as a copy of the source's (``<source>-credentials``, same namespace) before the Credentials phase
would generate fresh values that open nothing; a credentials Secret that already exists (the user's) is
used as it is. Neither there -> refused, naming both Secrets. The spec's users are applied afterwards as
for any instance (their passwords are the new resource's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kubetrove.agent.protocol import BackupTarget, RestoreRequest
from kubetrove.api.backup import BackupPhase
from kubetrove.api.common import Engine
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import HAMode
from kubetrove.datastores.registry import REGISTRY
from kubetrove.k8s.port import Obj
from kubetrove.reconcile.backup.lifecycle import parse_status

FIELD = "spec.restoreFrom.backup"


@dataclass(frozen=True)
class RestoreProblem:
    """Why a restore is refused (the shape of ``reconcile.errors.Problem``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def catalog_version(engine: Engine, version: str) -> str | None:
    """The catalog key a running engine's version belongs to ("10.11.16-MariaDB" -> "10.11"), or None.

    Catalog keys are what the agent calls the major (``methods.major``: "16" for PostgreSQL, "10.11"
    for MariaDB), or a pinned patch release of one ("5.0.8", ``VersionInfo.line`` "5.0"): the longest key
    a version starts with wins ("5.0.8" -> "5.0.8", "5.0.9" -> "5.0").
    """
    keys = [k for k in REGISTRY[engine].versions if re.match(rf"{re.escape(k)}(?![0-9])", version)]
    return max(keys, key=len) if keys else None


def check_backup(name: str, backup: Obj | None, spec: InstanceSpec) -> list[RestoreProblem]:
    """Every reason the DatabaseBackup ``backup`` cannot seed a new resource of ``spec`` (pure)."""
    if backup is None:
        return [RestoreProblem(FIELD, f"DatabaseBackup {name} does not exist")]
    status = parse_status(backup.get("status"))
    if status.phase is not BackupPhase.COMPLETED:
        detail = f" ({status.error})" if status.error else ""
        return [
            RestoreProblem(FIELD, f"DatabaseBackup {name} is {status.phase.value}, not Completed{detail}")
        ]
    problems = []
    engine = spec.datastore.type
    if status.engine != engine.value:
        problems.append(
            RestoreProblem(FIELD, f"DatabaseBackup {name} is of {status.engine}, this is {engine.value}")
        )
    else:
        versions = REGISTRY[engine].versions
        key = catalog_version(engine, status.engine_version or "")
        theirs = versions[key].major if key else status.engine_version
        ours = versions[spec.datastore.version].major
        if theirs != ours:
            problems.append(
                RestoreProblem(
                    FIELD,
                    f"DatabaseBackup {name} is of {engine.value} {theirs} ({status.engine_version}), this is"
                    f" {engine.value} {ours}: restore into the same major version, then upgrade",
                )
            )
    ring = REGISTRY[engine].ha_mode is HAMode.NO_PRIMARY
    if ring and isinstance(spec, ClusterSpec) and len(status.nodes) != spec.replicas:
        held = f"holds {len(status.nodes)} nodes" if status.nodes else "is of one node, not of a ring"
        problems.append(
            RestoreProblem(
                FIELD,
                f"DatabaseBackup {name} {held} and this ring has {spec.replicas} (spec.replicas): a ring is"
                " restored into a ring of the same size, member i from node i's snapshot with its tokens"
                " (each snapshot holds only its node's ranges)",
            )
        )
    elif ring and not isinstance(spec, ClusterSpec) and status.nodes:
        problems.append(
            RestoreProblem(
                FIELD,
                f"DatabaseBackup {name} is a ring's backup ({len(status.nodes)} nodes, each holding only its"
                f" ranges): restore it into a DatabaseCluster with replicas: {len(status.nodes)}",
            )
        )
    elif isinstance(spec, ClusterSpec) and (status.method or "").startswith("logical"):
        problems.append(
            RestoreProblem(
                FIELD,
                f"DatabaseBackup {name} is a logical backup ({status.method}): a DatabaseCluster restores"
                " physical backups only (every member must start from the same data); restore it into a"
                " DatabaseInstance, or use a physical backup",
            )
        )
    return problems


def restore_request(
    backup_id: str, target: BackupTarget, spec: InstanceSpec, member_backups: Sequence[str] = ()
) -> RestoreRequest:
    """What the init container restores: the engine's data directory below the volume; in a ring, member i
    restores ``member_backups[i]`` (the backup's ``status.nodes``, in member order)."""
    container = REGISTRY[spec.datastore.type].container(spec.datastore.version)
    # Where the engine reads its data: the mount itself (MySQL/MariaDB) or PGDATA below it. The agent stages
    # inside this directory, so either works (agent/backup/restore.py).
    data_dir = container.env.get("PGDATA", container.data_dir)
    return RestoreRequest(
        backup_id=member_backups[0] if member_backups else backup_id,
        member_backups=list(member_backups),
        source=target,
        engine=spec.datastore.type.value,
        # The agent's major: the catalog key's release line (a pinned patch key "5.0.8" is of line "5.0").
        major=REGISTRY[spec.datastore.type].versions[spec.datastore.version].line,
        data_dir=data_dir,
        first_member_only=isinstance(spec, ClusterSpec)
        and REGISTRY[spec.datastore.type].restore_first_member_only,
    )
