"""Semantic validation of a spec, beyond what the CRD schema can say, against the engine's strategy.

``validate_spec(spec, previous)`` returns one ``Problem`` per thing wrong (empty = valid), each with
the dotted field it is about and one sentence, ready to become a status condition and an Event. It
is pure: ``previous`` is the last spec the operator accepted (None on create).

Rules, and why:
- The engine never changes (data files are not portable between engines): restore a logical backup
  into a new resource instead.
- Versions move only along the engine's documented in-place upgrade paths (``VersionInfo.upgrade_from``):
  never down (data files are not backward compatible), never across a PostgreSQL major (that needs
  pg_upgrade), one Cassandra/MongoDB major at a time. A version outside the catalog is refused.
- Storage grows, never shrinks (a PVC cannot shrink), and its class is fixed once volumes exist.
- Grants must name a database in ``spec.databases``: refused, not warned, because a grant on a
  database that does not exist fails on some engines (PostgreSQL, MongoDB roles) and silently
  pre-grants on others (MySQL), and the same spec must mean the same thing on every engine.
- Duplicate database or user names are refused (which one would win is unclear).
- The engine's own databases and accounts, and the agent's login (``Datastore.reserved_*``), are refused
  as database, user and grant names: the agent refuses them too, but only once the resource runs;
  here the spec is refused before anything is created.
- ``backup.schedule`` is a five-field cron expression or a macro (@daily), as a CronJob takes it,
  and needs ``backup.storage`` (the model itself refuses a storage without exactly one target);
  ``backup.method`` must be one the engine has.
- ``restoreFrom`` is a creation-time choice: it cannot be added or changed later.
- ``spec.primary`` (switchover) only exists where there is a primary (the operator picks it, or the
  set elects it and is asked to elect this one), and must name a member ``<name>-<ordinal>`` with the
  ordinal below ``replicas``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from croniter import croniter

from kubetrove.api.policies import BackupMethod, BackupPolicy
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import Datastore, HAMode
from kubetrove.datastores.quantity import parse_quantity
from kubetrove.datastores.registry import REGISTRY


@dataclass(frozen=True)
class Problem:
    """One reason a spec is refused: the dotted field it is about and a one-sentence message."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def validate_spec(
    spec: InstanceSpec | ClusterSpec, previous: InstanceSpec | ClusterSpec | None = None
) -> list[Problem]:
    """Every problem of ``spec``, given ``previous``, the last spec accepted (None on create)."""
    ds = REGISTRY[spec.datastore.type]
    problems = _datastore(spec, previous, ds)
    problems += [
        Problem(f"spec.parameters.{name}", message)
        for name in sorted(spec.parameters)
        for message in ds.validate_parameters({name: spec.parameters[name]})
    ]
    problems += _storage(spec, previous)
    problems += _databases_and_users(spec, ds)
    if spec.backup is not None:
        problems += _backup(spec.backup, ds)
    if previous is not None and spec.restore_from != previous.restore_from:
        problems.append(
            Problem(
                "spec.restoreFrom",
                "restoreFrom applies only when the resource is created; "
                "it cannot be added or changed afterwards",
            )
        )
    if isinstance(spec, ClusterSpec):
        problems += [Problem("spec.replicas", m) for m in ds.validate_topology(spec.replicas)]
        problems += _primary(spec, ds)
    return problems


def _datastore(spec: InstanceSpec, previous: InstanceSpec | None, ds: Datastore) -> list[Problem]:
    new = spec.datastore
    if previous is not None and previous.datastore.type != new.type:
        return [
            Problem(
                "spec.datastore.type",
                f"the engine cannot change ({previous.datastore.type} -> {new.type}): "
                "create a new resource and restore a logical backup into it",
            )
        ]
    versions = list(ds.versions)
    if new.version not in ds.versions:
        supported = ", ".join(versions)
        return [
            Problem(
                "spec.datastore.version",
                f"{ds.engine} {new.version} is not supported (supported: {supported})",
            )
        ]
    old = previous.datastore.version if previous is not None else new.version
    if old == new.version or old not in ds.versions:
        return []
    if versions.index(new.version) < versions.index(old):
        return [
            Problem(
                "spec.datastore.version",
                f"{ds.engine} cannot be downgraded in place ({old} -> {new.version})",
            )
        ]
    paths = ds.versions[new.version].upgrade_from
    if old in paths:
        return []
    allowed = ", ".join(paths) or "none"
    return [
        Problem(
            "spec.datastore.version",
            f"{ds.engine} {old} -> {new.version} is not an in-place upgrade path "
            f"(to {new.version} from: {allowed}); restore a logical backup into a new resource instead",
        )
    ]


def _quantity(field: str, text: str) -> tuple[Fraction | None, list[Problem]]:
    try:
        value = parse_quantity(text)
    except ValueError:
        return None, [Problem(field, f"{text} is not a Kubernetes quantity (e.g. 10Gi, 500M)")]
    if value <= 0:
        return None, [Problem(field, f"{text} must be a positive size")]
    return value, []


def _storage(spec: InstanceSpec, previous: InstanceSpec | None) -> list[Problem]:
    size, problems = _quantity("spec.storage.size", spec.storage.size)
    if previous is None:
        return problems
    old_class, new_class = previous.storage.storage_class_name, spec.storage.storage_class_name
    if old_class != new_class:
        problems.append(
            Problem(
                "spec.storage.storageClassName",
                f"the storage class cannot change ({old_class or 'default'} -> {new_class or 'default'}): "
                "it is fixed when the volumes are created",
            )
        )
    try:
        old_size = parse_quantity(previous.storage.size)
    except ValueError:
        return problems  # the accepted spec had it right by construction; nothing to compare
    if size is not None and size < old_size:
        problems.append(
            Problem(
                "spec.storage.size",
                f"storage cannot shrink ({previous.storage.size} -> {spec.storage.size}): volumes only grow",
            )
        )
    return problems


def _databases_and_users(spec: InstanceSpec, ds: Datastore) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, db in enumerate(spec.databases):
        if db.name in ds.reserved_databases:
            problems.append(Problem(f"spec.databases[{i}].name", _reserved(ds, "database", db.name)))
        elif db.name in seen:
            problems.append(
                Problem(f"spec.databases[{i}].name", f"database {db.name} is listed more than once")
            )
        seen.add(db.name)
    users: set[str] = set()
    for i, user in enumerate(spec.users):
        if user.name in ds.reserved_users:
            problems.append(Problem(f"spec.users[{i}].name", _reserved(ds, "user", user.name)))
        elif user.name in users:
            problems.append(Problem(f"spec.users[{i}].name", f"user {user.name} is listed more than once"))
        users.add(user.name)
        for j, grant in enumerate(user.grants):
            if grant.database in ds.reserved_databases:
                problems.append(
                    Problem(
                        f"spec.users[{i}].grants[{j}].database", _reserved(ds, "database", grant.database)
                    )
                )
            elif grant.database not in seen:
                problems.append(
                    Problem(
                        f"spec.users[{i}].grants[{j}].database",
                        f"user {user.name} is granted on database {grant.database}, "
                        "which is not in spec.databases",
                    )
                )
    return problems


def _reserved(ds: Datastore, kind: str, name: str) -> str:
    names = sorted(ds.reserved_databases if kind == "database" else ds.reserved_users)
    return f"{kind} {name} is reserved by {ds.engine} and kubetrove (reserved: {', '.join(names)})"


_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _valid_cron(expr: str) -> bool:
    # Five fields like a CronJob (croniter alone would also take a sixth "seconds" field).
    if expr.strip() in _CRON_MACROS:
        return True
    return len(expr.split()) == 5 and bool(croniter.is_valid(expr))


def _backup(backup: BackupPolicy, ds: Datastore) -> list[Problem]:
    problems: list[Problem] = []
    if backup.schedule is not None:
        if not _valid_cron(backup.schedule):
            problems.append(
                Problem(
                    "spec.backup.schedule",
                    f"{backup.schedule!r} is not a cron expression "
                    "(five fields: minute hour day-of-month month day-of-week, or a macro such as @daily)",
                )
            )
        if backup.storage is None:
            problems.append(
                Problem(
                    "spec.backup.storage",
                    "backup.schedule is set but backup.storage is not: name a target (s3 or pvc)",
                )
            )
    if backup.method is not BackupMethod.AUTO and backup.method not in ds.backup_methods:
        available = ", ".join([BackupMethod.AUTO, *ds.backup_methods])
        problems.append(
            Problem(
                "spec.backup.method",
                f"backup method {backup.method} is not available for {ds.engine} (available: {available})",
            )
        )
    return problems


def _primary(spec: ClusterSpec, ds: Datastore) -> list[Problem]:
    if spec.primary is None:
        return []
    if ds.ha_mode is HAMode.NO_PRIMARY:
        return [
            Problem(
                "spec.primary",
                f"{ds.engine} has no primary (a ring of equals): spec.primary must be unset",
            )
        ]
    m = re.fullmatch(r".+-([0-9]+)", spec.primary)
    if m is None or int(m.group(1)) >= spec.replicas:
        return [
            Problem(
                "spec.primary",
                f"{spec.primary} is not a member: "
                f"expected <name>-<ordinal> with an ordinal below {spec.replicas}",
            )
        ]
    return []
