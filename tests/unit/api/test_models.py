"""The API models: camelCase wire names, defaults, and what they refuse."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubetrove.api.backup import BackupSpec, BackupStatus, SourceKind
from kubetrove.api.common import DeletionPolicy, Engine, Privilege
from kubetrove.api.policies import BackupMethod, BackupPolicy, BackupStorage
from kubetrove.api.resources import CLUSTER, parse_body
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.api.status import MemberRole, Phase, ResourceStatus

# The example of ARCHITECTURE.md, as a user writes it.
ORDERS: dict[str, Any] = {
    "datastore": {"type": "mariadb", "version": "10.11"},
    "replicas": 3,
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
    "storage": {"size": "10Gi", "storageClassName": "standard"},
    "databases": [{"name": "orders"}],
    "users": [
        {
            "name": "app",
            "passwordSecretRef": {"name": "orders-app"},
            "grants": [{"database": "orders", "privileges": ["readWrite"]}],
        }
    ],
    "parameters": {"max_connections": "500"},
    "failover": {"automatic": True},
    "backup": {
        "schedule": "0 3 * * *",
        "keep": 7,
        "storage": {"s3": {"bucket": "b", "credentialsSecretRef": "s3"}},
    },
    "restoreFrom": {"backup": "orders-20261120"},
}
MINIMAL: dict[str, Any] = {"datastore": {"type": "postgresql", "version": "17"}}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def test_architecture_example_parses_with_camel_case_names() -> None:
    spec = ClusterSpec.from_wire(ORDERS)
    assert spec.datastore.type is Engine.MARIADB
    assert spec.storage.storage_class_name == "standard"
    assert spec.users[0].password_secret_ref is not None
    assert spec.users[0].password_secret_ref.name == "orders-app"
    assert spec.users[0].grants[0].privileges == [Privilege.READ_WRITE]
    assert spec.backup is not None and spec.backup.storage is not None and spec.backup.storage.s3 is not None
    assert spec.backup.storage.s3.credentials_secret_ref == "s3"
    assert spec.restore_from is not None and spec.restore_from.backup == "orders-20261120"


def test_to_wire_round_trips_in_camel_case() -> None:
    wire = ClusterSpec.from_wire(ORDERS).to_wire()
    assert wire["storage"] == {"size": "10Gi", "storageClassName": "standard"}
    assert wire["restoreFrom"] == {"backup": "orders-20261120"}
    assert wire["users"][0]["passwordSecretRef"] == {"name": "orders-app", "key": "password"}
    assert "primary" not in wire  # unset optionals are left out
    assert ClusterSpec.from_wire(wire) == ClusterSpec.from_wire(ORDERS)


def test_defaults() -> None:
    spec = ClusterSpec.from_wire(MINIMAL)
    assert spec.replicas == 3
    assert spec.storage.size == "1Gi" and spec.storage.storage_class_name is None
    assert spec.failover.automatic is True and spec.failover.detection_seconds == 5
    assert spec.deletion_policy.volumes is DeletionPolicy.RETAIN
    assert spec.deletion_policy.backups is DeletionPolicy.RETAIN
    assert (spec.databases, spec.users, spec.parameters) == ([], [], {})
    assert spec.backup is None and spec.restore_from is None and spec.primary is None
    status = ResourceStatus.from_wire({})
    assert status.phase is Phase.PENDING and status.conditions == [] and status.members == []
    backup = BackupSpec.from_wire({"source": {"kind": "DatabaseInstance", "name": "db"}})
    assert backup.source.kind is SourceKind.INSTANCE
    assert backup.method is BackupMethod.AUTO and backup.deletion_policy is DeletionPolicy.RETAIN


def test_status_parses_as_the_operator_writes_it() -> None:
    status = ResourceStatus.from_wire(
        {
            "phase": "Ready",
            "observedGeneration": 4,
            "primary": "orders-0",
            "endpoints": {"readWrite": "orders-rw:3306"},
            "members": [{"pod": "orders-0", "role": "primary", "lagSeconds": 0.5, "healthy": True}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "AllMembersReady"}],
        }
    )
    assert status.members[0].role is MemberRole.PRIMARY and status.members[0].lag_seconds == 0.5
    assert status.endpoints is not None and status.endpoints.read_write == "orders-rw:3306"
    assert BackupStatus.from_wire({"sizeBytes": 10, "phase": "Completed"}).size_bytes == 10


@pytest.mark.parametrize(
    "body",
    [
        with_(MINIMAL, replica=3),  # misspelt field
        with_(MINIMAL, datastore={"type": "mysql", "version": "8.4", "flavour": "x"}),
        with_(MINIMAL, storage={"size": "1Gi", "class": "fast"}),
    ],
)
def test_unknown_field_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ClusterSpec.from_wire(body)


@pytest.mark.parametrize(
    "body",
    [
        {"datastore": {"type": "oracle", "version": "19"}},
        with_(MINIMAL, users=[{"name": "u", "grants": [{"database": "d", "privileges": ["superuser"]}]}]),
        with_(MINIMAL, deletionPolicy={"volumes": "Keep"}),
        with_(MINIMAL, backup={"method": "snapshot"}),
    ],
)
def test_bad_enum_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Input should be"):
        InstanceSpec.from_wire(body)


@pytest.mark.parametrize("size", ["ten", "10 Gi", "10GB", "-1Gi", "1..2Gi", "", "Gi", True, 1.5])
def test_bad_quantity_is_refused(size: Any) -> None:
    with pytest.raises(ValidationError):
        InstanceSpec.from_wire(with_(MINIMAL, storage={"size": size}))


@pytest.mark.parametrize(
    ("given", "held"), [("10Gi", "10Gi"), ("500M", "500M"), ("1.5Ti", "1.5Ti"), (10, "10")]
)
def test_quantity_accepts_kubernetes_forms_and_holds_a_string(given: Any, held: str) -> None:
    spec = InstanceSpec.from_wire(
        with_(MINIMAL, storage={"size": given}, resources={"limits": {"cpu": given}})
    )
    assert spec.storage.size == held
    assert spec.resources.limits is not None and spec.resources.limits.cpu == held


@pytest.mark.parametrize(("replicas", "ok"), [(0, False), (1, True), (15, True), (16, False), (-3, False)])
def test_replicas_bounds(replicas: int, ok: bool) -> None:
    body = with_(MINIMAL, replicas=replicas)
    if ok:
        assert ClusterSpec.from_wire(body).replicas == replicas
    else:
        with pytest.raises(ValidationError, match="replicas"):
            ClusterSpec.from_wire(body)


@pytest.mark.parametrize(
    "body",
    [
        {"datastore": {"type": "mysql", "version": "latest"}},
        with_(MINIMAL, databases=[{"name": "1orders"}]),
        with_(MINIMAL, users=[{"name": "app; DROP TABLE x"}]),
        with_(MINIMAL, users=[{"name": "u", "grants": [{"database": "d", "privileges": []}]}]),
        with_(MINIMAL, restoreFrom={"backup": "Not_A_Name"}),
        with_(MINIMAL, primary="Orders-0"),
        with_(MINIMAL, failover={"detectionSeconds": 0}),
        with_(MINIMAL, backup={"keep": 0}),
    ],
)
def test_out_of_range_values_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ClusterSpec.from_wire(body)


@pytest.mark.parametrize(
    "storage", [{}, {"s3": {"bucket": "b", "credentialsSecretRef": "c"}, "pvc": {"claimName": "p"}}]
)
def test_backup_storage_needs_exactly_one_target(storage: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="exactly one of s3 or pvc"):
        BackupStorage.from_wire(storage)


def test_backup_storage_with_one_target() -> None:
    assert BackupStorage.from_wire({"pvc": {"claimName": "backups"}}).pvc is not None


def test_a_restore_time_target_needs_verify() -> None:
    with pytest.raises(ValidationError, match="verifyMaxRestoreSeconds needs verify: true"):
        BackupPolicy.from_wire({"verifyMaxRestoreSeconds": 600})
    with pytest.raises(ValidationError):
        BackupPolicy.from_wire({"verify": True, "verifyMaxRestoreSeconds": 0})
    assert (
        BackupPolicy.from_wire({"verify": True, "verifyMaxRestoreSeconds": 600}).verify_max_restore_seconds
        == 600
    )


def test_models_are_frozen() -> None:
    spec = ClusterSpec.from_wire(MINIMAL)
    with pytest.raises(ValidationError, match="frozen"):
        spec.replicas = 5  # type: ignore[misc]


def test_parse_body_reads_identity_and_spec() -> None:
    body = {
        "metadata": {
            "namespace": "ns",
            "name": "orders",
            "uid": "u-1",
            "generation": 2,
            "labels": {"a": "b"},
        },
        "spec": ORDERS,
    }
    parsed = parse_body(CLUSTER, body, ClusterSpec)
    assert (parsed.ref.namespace, parsed.ref.name, parsed.ref.generation) == ("ns", "orders", 2)
    assert parsed.labels == {"a": "b"} and parsed.spec.replicas == 3
