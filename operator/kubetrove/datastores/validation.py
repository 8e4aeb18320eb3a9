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
- Storage grows, never shrinks (a PVC cannot shrink), and its class is fixed once volumes exist. It is
  at least ``MIN_STORAGE``: a Kubernetes quantity such as ``1m`` (a thousandth of a byte) or ``1Ki`` is
  valid to the schema, but no engine initialises its system files in it; the pod would crash-loop.
- ``storage.autogrow``: ``maximum`` is at least ``storage.size`` (else autogrow could never grow) and
  fits an int64 of bytes (what a claim can request; ``1e1000`` would only fail once reached), and a
  quantity ``increment`` is at least 1Mi: sizes are whole MiB, and ``increment: 20`` (20 bytes, meant as
  20 percent) or ``1m`` (a thousandth of a byte, meant as a megabyte) is a mistake the schema cannot see.
  A small but real increment (10Mi on a 1Ti volume) is allowed: it is slow, not wrong.
- Grants must name a database in ``spec.databases``: refused, not warned, because a grant on a
  database that does not exist fails on some engines (PostgreSQL, MongoDB roles) and silently
  pre-grants on others (MySQL), and the same spec must mean the same thing on every engine.
- Duplicate database or user names are refused (which one would win is unclear), and so are names the
  engine itself refuses or keeps for itself (``Datastore.name_rules``: MySQL user names over 32
  characters, ``root``, the system schemas; MongoDB's ``admin``, ``root`` and ``__system``), so the agent
  is never asked for what must fail. A grant on a reserved database is refused on the grant too: the
  agent would refuse it, but only once the resource runs; here the spec is refused before anything is
  created.
- A Cassandra keyspace's ``replicationFactor`` is at most the ring size (``replicas``; 1 for an
  instance): with more replicas than nodes a QUORUM write can never succeed. Other engines have none.
  A ring does not scale below the largest factor of its keyspaces (``spec.replicas``): a
  decommission below it is refused by Cassandra itself ("Not enough live nodes to maintain
  replication factor"), so the spec is refused first and nothing changes.
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

from kubetrove.api.common import Database, TLSMode
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
    problems += _replication_factors(spec, ds)
    problems += _tls(spec, ds)
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
        problems += _scale_down(spec, previous, ds)
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
        # A release asked for by its full number ("5.0.9") that a line key runs ("5.0"): say which key.
        runs_it = [k for k, v in ds.versions.items() if v.image.rpartition(":")[2] == new.version]
        hint = f"; {new.version} is what {runs_it[0]} runs: set version {runs_it[0]!r}" if runs_it else ""
        return [
            Problem(
                "spec.datastore.version",
                f"{ds.engine} {new.version} is not supported (supported: {supported}){hint}",
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


MIN_STORAGE_TEXT = "128Mi"
MIN_STORAGE = parse_quantity(MIN_STORAGE_TEXT)


def _storage(spec: InstanceSpec, previous: InstanceSpec | None) -> list[Problem]:
    size, problems = _quantity("spec.storage.size", spec.storage.size)
    if size is not None and size < MIN_STORAGE:
        problems.append(
            Problem(
                "spec.storage.size",
                f"{spec.storage.size} is below the minimum of {MIN_STORAGE_TEXT}: no engine fits its system"
                " files in less",
            )
        )
    problems += _autogrow(spec, size)
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


# The smallest quantity increment: sizes are rounded up to whole MiB, and a smaller one is a mistake
# (``increment: 20`` meant as 20 percent is 20 bytes; ``1m`` meant as a megabyte is a thousandth of one).
MIN_INCREMENT_TEXT = "1Mi"
MIN_INCREMENT = parse_quantity(MIN_INCREMENT_TEXT)
# The largest size a claim can request: Kubernetes (and CSI) hold a volume's bytes in an int64.
MAX_VOLUME = 2**63 - 1


def _autogrow(spec: InstanceSpec, size: Fraction | None) -> list[Problem]:
    """spec.storage.autogrow: a positive maximum not below spec.storage.size, a quantity increment of at
    least 1Mi (the schema checks the forms; a quantity increment of 0 or 20 bytes, or a maximum below the
    size, it cannot)."""
    auto = spec.storage.autogrow
    if auto is None:
        return []
    maximum, problems = _quantity("spec.storage.autogrow.maximum", auto.maximum)
    if maximum is not None and maximum > MAX_VOLUME:
        problems.append(
            Problem(
                "spec.storage.autogrow.maximum",
                f"{auto.maximum} is more than a volume can be asked for (Kubernetes counts sizes in a signed "
                "64-bit number of bytes: less than 8Ei)",
            )
        )
    if maximum is not None and size is not None and maximum < size:
        problems.append(
            Problem(
                "spec.storage.autogrow.maximum",
                f"{auto.maximum} is below spec.storage.size ({spec.storage.size}): autogrow could never grow",
            )
        )
    if not auto.increment.endswith("%"):
        increment, wrong = _quantity("spec.storage.autogrow.increment", auto.increment)
        problems += wrong
        if increment is not None and increment < MIN_INCREMENT:
            problems.append(
                Problem(
                    "spec.storage.autogrow.increment",
                    f"{auto.increment} is less than {MIN_INCREMENT_TEXT} (a quantity is bytes; the volumes "
                    'grow in whole MiB): write a size such as "2Gi", or a percentage with its sign, "20%"',
                )
            )
    return problems


def _databases_and_users(spec: InstanceSpec, ds: Datastore) -> list[Problem]:
    rules = ds.name_rules
    problems = [
        Problem(f"spec.databases[{i}].name", f"{message} ({ds.engine})")
        for i, db in enumerate(spec.databases)
        for message in rules.problems("database", db.name)
    ]
    problems += [
        Problem(f"spec.users[{i}].name", f"{message} ({ds.engine})")
        for i, user in enumerate(spec.users)
        for message in rules.problems("user", user.name)
    ]
    seen: set[str] = set()
    for i, db in enumerate(spec.databases):
        if db.name in seen:
            problems.append(
                Problem(f"spec.databases[{i}].name", f"database {db.name} is listed more than once")
            )
        seen.add(db.name)
    users: set[str] = set()
    for i, user in enumerate(spec.users):
        if user.name in users:
            problems.append(Problem(f"spec.users[{i}].name", f"user {user.name} is listed more than once"))
        users.add(user.name)
        for j, grant in enumerate(user.grants):
            field = f"spec.users[{i}].grants[{j}].database"
            if rules.is_reserved("database", grant.database):
                problems.append(
                    Problem(field, f"database name {grant.database} is reserved by the engine ({ds.engine})")
                )
            elif grant.database not in seen:
                problems.append(
                    Problem(
                        field,
                        f"user {user.name} is granted on database {grant.database}, "
                        "which is not in spec.databases",
                    )
                )
    return problems


DEFAULT_MAX_REPLICATION_FACTOR = 3  # a keyspace without replicationFactor: the ring size, at most three


def replication_factor(db: Database, replicas: int) -> int:
    """The replication factor a keyspace gets: its own, or the ring size capped at three."""
    return db.replication_factor or min(replicas, DEFAULT_MAX_REPLICATION_FACTOR)


def _ring_size(spec: InstanceSpec) -> int:
    return spec.replicas if isinstance(spec, ClusterSpec) else 1


def _replication_factors(spec: InstanceSpec, ds: Datastore) -> list[Problem]:
    problems: list[Problem] = []
    size = _ring_size(spec)
    for i, db in enumerate(spec.databases):
        field = f"spec.databases[{i}].replicationFactor"
        if db.replication_factor is None:
            continue
        if not ds.replicated_databases:
            problems.append(
                Problem(field, f"{ds.engine} replicates every database to every member: leave it unset")
            )
        elif db.replication_factor > size:
            problems.append(
                Problem(
                    field,
                    f"replication factor {db.replication_factor} of {db.name} is above the ring size ({size}"
                    f" node{'s' if size > 1 else ''}): a QUORUM write could never succeed",
                )
            )
    return problems


def _scale_down(spec: ClusterSpec, previous: InstanceSpec | None, ds: Datastore) -> list[Problem]:
    """A ring never shrinks below the replication factor of a keyspace it was told to keep."""
    if (
        not ds.replicated_databases
        or not isinstance(previous, ClusterSpec)
        or spec.replicas >= previous.replicas
    ):
        return []
    # Keyspaces keep the factor they were created with; a default one follows the ring up to three.
    factors = {db.name: replication_factor(db, previous.replicas) for db in spec.databases}
    over = sorted(name for name, factor in factors.items() if factor > spec.replicas)
    if not over:
        return []
    listed = ", ".join(f"{name} (replication factor {factors[name]})" for name in over)
    return [
        Problem(
            "spec.replicas",
            f"cannot scale the ring from {previous.replicas} to {spec.replicas} nodes: fewer nodes than the"
            f" replication factor of {listed}; lower replicationFactor first",
        )
    ]


_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _valid_cron(expr: str) -> bool:
    # Five fields like a CronJob (croniter alone would also take a sixth "seconds" field).
    if expr.strip() in _CRON_MACROS:
        return True
    return len(expr.split()) == 5 and bool(croniter.is_valid(expr))


def _tls(spec: InstanceSpec, ds: Datastore) -> list[Problem]:
    if spec.tls_mode is TLSMode.DISABLED or ds.serves_tls:
        return []
    return [Problem("spec.tls.mode", f"client TLS is not available for {ds.engine} yet: use disabled")]


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
