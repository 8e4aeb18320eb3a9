"""validate_spec: one literal message per problem, on the field it is about."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.validation import Problem, validate_spec


def cluster(**spec: Any) -> ClusterSpec:
    body: dict[str, Any] = {"datastore": {"type": "mariadb", "version": "11.8"}, "replicas": 3}
    body.update(spec)
    return ClusterSpec.model_validate(body)


def instance(**spec: Any) -> InstanceSpec:
    body: dict[str, Any] = {"datastore": {"type": "postgresql", "version": "17"}}
    body.update(spec)
    return InstanceSpec.model_validate(body)


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_a_good_spec_has_no_problems() -> None:
    spec = cluster(
        storage={"size": "10Gi"},
        databases=[{"name": "orders"}],
        users=[{"name": "app", "grants": [{"database": "orders", "privileges": ["readWrite"]}]}],
        parameters={"max_connections": "500"},
        backup={"schedule": "0 3 * * *", "storage": {"pvc": {"claimName": "backups"}}},
        primary="orders-2",
    )
    assert validate_spec(spec, None) == []
    assert validate_spec(spec, spec) == []


def test_unsupported_version_lists_the_supported_ones() -> None:
    spec = cluster(datastore={"type": "mariadb", "version": "10.6"})
    assert validate_spec(spec, None) == [
        Problem("spec.datastore.version", "mariadb 10.6 is not supported (supported: 10.11, 11.8)")
    ]


def test_parameters_one_problem_each_on_their_own_field() -> None:
    spec = cluster(parameters={"max_connections": "abc", "nope": "1", "slow_query_log": "ON"})
    problems = validate_spec(spec, None)
    assert [p.field for p in problems] == ["spec.parameters.max_connections", "spec.parameters.nope"]
    assert (
        problems[0].message
        == "parameter max_connections=abc for mariadb: expected an integer between 10 and 100000"
    )
    assert problems[1].message.startswith("parameter nope for mariadb: unknown parameter (supported: ")


def test_storage_never_shrinks_and_keeps_its_class() -> None:
    old = cluster(storage={"size": "10Gi", "storageClassName": "standard"})
    new = cluster(storage={"size": "10G", "storageClassName": "fast"})
    assert messages(validate_spec(new, old)) == [
        "spec.storage.storageClassName: the storage class cannot change (standard -> fast): "
        "it is fixed when the volumes are created",
        "spec.storage.size: storage cannot shrink (10Gi -> 10G): volumes only grow",
    ]
    # Growing, and the same size spelt differently, are fine.
    assert validate_spec(cluster(storage={"size": "10241Mi"}), cluster(storage={"size": "10Gi"})) == []
    assert validate_spec(cluster(storage={"size": "10240Mi"}), cluster(storage={"size": "10Gi"})) == []


def test_storage_size_must_be_a_positive_quantity() -> None:
    # The CRD pattern lets a fractional exponent through; apimachinery's parser (and ours) refuses it.
    assert messages(validate_spec(instance(storage={"size": "1e1.5"}), None)) == [
        "spec.storage.size: 1e1.5 is not a Kubernetes quantity (e.g. 10Gi, 500M)"
    ]
    assert messages(validate_spec(instance(storage={"size": "0"}), None)) == [
        "spec.storage.size: 0 must be a positive size"
    ]


@pytest.mark.parametrize("size", ["1m", "1", "1Ki", "127Mi"])
def test_storage_size_has_a_minimum(size: str) -> None:
    assert messages(validate_spec(instance(storage={"size": size}), None)) == [
        f"spec.storage.size: {size} is below the minimum of 128Mi: no engine fits its system files in less"
    ]


def test_storage_size_minimum_itself_is_accepted() -> None:
    assert validate_spec(instance(storage={"size": "128Mi"}), None) == []


def test_postgresql_pg_roles_are_reserved() -> None:
    """PostgreSQL answers CREATE ROLE pg_x with "role name is reserved" (42939): refused here first."""
    spec = instance(users=[{"name": "pg_monitor"}, {"name": "PG_x"}, {"name": "pgx"}])
    assert messages(validate_spec(spec, None)) == [
        "spec.users[0].name: user name pg_monitor is reserved by the engine (postgresql)",
        "spec.users[1].name: user name PG_x is reserved by the engine (postgresql)",
    ]


def test_engine_never_changes() -> None:
    old = instance(datastore={"type": "mysql", "version": "9.7"})
    assert messages(validate_spec(instance(), old)) == [
        "spec.datastore.type: the engine cannot change (mysql -> postgresql): "
        "create a new resource and restore a logical backup into it"
    ]


def test_version_changes_follow_the_upgrade_paths() -> None:
    def change(engine: str, old: str, new: str) -> list[str]:
        before = instance(datastore={"type": engine, "version": old})
        return messages(validate_spec(instance(datastore={"type": engine, "version": new}), before))

    assert change("mariadb", "10.11", "11.8") == []
    assert change("mariadb", "11.8", "10.11") == [
        "spec.datastore.version: mariadb cannot be downgraded in place (11.8 -> 10.11)"
    ]
    assert change("postgresql", "17", "18") == [
        "spec.datastore.version: postgresql 17 -> 18 is not an in-place upgrade path (to 18 from: none); "
        "restore a logical backup into a new resource instead"
    ]
    # Cassandra's pinned previous patch release moves to the 5.0 line's current one, never back; the
    # current one asked for by its release number is refused naming its key.
    assert messages(validate_spec(instance(datastore={"type": "cassandra", "version": "5.0.9"}), None)) == [
        "spec.datastore.version: cassandra 5.0.9 is not supported (supported: 5.0.8, 5.0);"
        " 5.0.9 is what 5.0 runs: set version '5.0'"
    ]
    assert change("cassandra", "5.0.8", "5.0") == []
    assert change("cassandra", "5.0", "5.0.8") == [
        "spec.datastore.version: cassandra cannot be downgraded in place (5.0 -> 5.0.8)"
    ]


def test_replicas_must_fit_the_topology() -> None:
    spec = cluster(datastore={"type": "mongodb", "version": "6.0"}, replicas=4)
    assert messages(validate_spec(spec, None)) == [
        "spec.replicas: replicas=4 for mongodb: expected 1, 3, 5 or 7 "
        "(a replica set needs an odd number of voting members to elect a primary; at most 7 vote)"
    ]
    assert validate_spec(cluster(datastore={"type": "cassandra", "version": "5.0"}, replicas=4), None) == []


@pytest.mark.parametrize(("engine", "version"), [("mariadb", "11.8"), ("mysql", "9.7"), ("postgresql", "17")])
def test_a_one_member_cluster_of_an_acknowledging_engine_is_refused(engine: str, version: str) -> None:
    # Its primary would wait forever for a replica's acknowledgement: every write would block.
    spec = cluster(datastore={"type": engine, "version": version}, replicas=1)
    (message,) = messages(validate_spec(spec, None))
    assert message.startswith(f"spec.replicas: replicas=1 for {engine}: expected between 2 and 15")
    assert message.endswith("so a single server is a DatabaseInstance)")
    assert validate_spec(cluster(datastore={"type": engine, "version": version}, replicas=2), None) == []


def test_grants_need_declared_databases_and_names_are_unique() -> None:
    spec = cluster(
        databases=[{"name": "orders"}, {"name": "orders"}],
        users=[
            {"name": "app", "grants": [{"database": "billing", "privileges": ["read"]}]},
            {"name": "app"},
        ],
    )
    assert messages(validate_spec(spec, None)) == [
        "spec.databases[1].name: database orders is listed more than once",
        "spec.users[0].grants[0].database: "
        "user app is granted on database billing, which is not in spec.databases",
        "spec.users[1].name: user app is listed more than once",
    ]


def test_names_the_engine_refuses_or_keeps_are_refused_on_their_field() -> None:
    """MySQL: user names stop at 32 characters; root and the system schemas are the server's own."""
    spec = InstanceSpec.model_validate(
        {
            "datastore": {"type": "mysql", "version": "9.7"},
            "databases": [{"name": "orders"}, {"name": "sys"}, {"name": "Mysql"}],
            "users": [{"name": "u" * 32}, {"name": "u" * 33}, {"name": "root"}, {"name": "ROOT"}],
        }
    )
    assert messages(validate_spec(spec, None)) == [
        "spec.databases[1].name: database name sys is reserved by the engine (mysql)",
        "spec.databases[2].name: database name Mysql is reserved by the engine (mysql)",
        f"spec.users[1].name: user name {'u' * 33} is longer than 32 characters (mysql)",
        "spec.users[2].name: user name root is reserved by the engine (mysql)",
        "spec.users[3].name: user name ROOT is reserved by the engine (mysql)",
    ]
    # The same 33-character user is fine where the engine takes it (MariaDB: 80).
    mariadb = spec.model_copy(
        update={
            "datastore": spec.datastore.model_copy(update={"type": "mariadb", "version": "11.8"}),
            "databases": [],
            "users": spec.users[:2],
        }
    )
    assert validate_spec(mariadb, None) == []


def test_mongodb_reserved_databases_and_users_are_refused_on_their_field() -> None:
    spec = cluster(
        datastore={"type": "mongodb", "version": "6.0"},
        databases=[{"name": "shop"}, {"name": "admin"}, {"name": "local"}, {"name": "config"}],
        users=[
            {"name": "root", "grants": [{"database": "shop", "privileges": ["read"]}]},
            {"name": "__system"},
            {"name": "app", "grants": [{"database": "admin", "privileges": ["readWrite"]}]},
        ],
    )
    assert messages(validate_spec(spec, None)) == [
        "spec.databases[1].name: database name admin is reserved by the engine (mongodb)",
        "spec.databases[2].name: database name local is reserved by the engine (mongodb)",
        "spec.databases[3].name: database name config is reserved by the engine (mongodb)",
        "spec.users[0].name: user name root is reserved by the engine (mongodb)",
        "spec.users[1].name: user name __system is reserved by the engine (mongodb)",
        "spec.users[2].grants[0].database: database name admin is reserved by the engine (mongodb)",
    ]


@pytest.mark.parametrize(
    ("engine", "version", "database", "user"),
    [
        ("mysql", "9.7", "mysql", "root"),
        ("mariadb", "11.8", "performance_schema", "mariadb"),
        ("postgresql", "17", "template1", "postgres"),
        ("cassandra", "5.0", "system_auth", "cassandra"),
    ],
)
def test_every_engine_refuses_its_own_databases_and_the_agents_login(
    engine: str, version: str, database: str, user: str
) -> None:
    spec = cluster(
        datastore={"type": engine, "version": version},
        replicas=3,
        databases=[{"name": database}],
        users=[{"name": user}],
    )
    assert [p.field for p in validate_spec(spec, None)] == ["spec.databases[0].name", "spec.users[0].name"]


def test_backup_policy() -> None:
    spec = cluster(backup={"schedule": "0 3 * *", "method": "logical"})
    assert messages(validate_spec(spec, None)) == [
        "spec.backup.schedule: '0 3 * *' is not a cron expression "
        "(five fields: minute hour day-of-month month day-of-week, or a macro such as @daily)",
        "spec.backup.storage: backup.schedule is set but backup.storage is not: name a target (s3 or pvc)",
    ]
    pvc = {"pvc": {"claimName": "b"}}
    assert validate_spec(cluster(backup={"schedule": "@daily", "storage": pvc}), None) == []
    # Six fields (seconds) are croniter's extension, not a CronJob schedule.
    assert [p.field for p in validate_spec(cluster(backup={"schedule": "0 0 3 * * *"}), None)] == [
        "spec.backup.schedule",
        "spec.backup.storage",
    ]


def test_backup_method_must_be_one_the_engine_has() -> None:
    spec = cluster(datastore={"type": "cassandra", "version": "5.0"}, backup={"method": "logical"})
    assert messages(validate_spec(spec, None)) == [
        "spec.backup.method: backup method logical is not available for cassandra (available: auto, physical)"
    ]


def test_restore_from_is_creation_only() -> None:
    old = cluster()
    new = cluster(restoreFrom={"backup": "orders-20261120"})
    assert validate_spec(new, None) == []
    assert messages(validate_spec(new, old)) == [
        "spec.restoreFrom: restoreFrom applies only when the resource is created; "
        "it cannot be added or changed afterwards"
    ]


def test_switchover_target() -> None:
    assert messages(validate_spec(cluster(primary="orders-3"), None)) == [
        "spec.primary: orders-3 is not a member: expected <name>-<ordinal> with an ordinal below 3"
    ]
    spec = cluster(datastore={"type": "cassandra", "version": "5.0"}, primary="ring-0")
    assert messages(validate_spec(spec, None)) == [
        "spec.primary: cassandra has no primary (a ring of equals): spec.primary must be unset"
    ]


def test_every_problem_is_reported_at_once() -> None:
    old = cluster(storage={"size": "10Gi"})
    spec = cluster(
        datastore={"type": "mariadb", "version": "11.8"},
        replicas=3,
        storage={"size": "5Gi"},
        parameters={"wait_timeout": "0"},
        users=[{"name": "app", "grants": [{"database": "x", "privileges": ["read"]}]}],
        backup={"schedule": "nightly"},
    )
    assert [p.field for p in validate_spec(spec, old)] == [
        "spec.parameters.wait_timeout",
        "spec.storage.size",
        "spec.users[0].grants[0].database",
        "spec.backup.schedule",
        "spec.backup.storage",
    ]


def ring(**spec: Any) -> ClusterSpec:
    return cluster(datastore={"type": "cassandra", "version": "5.0"}, **spec)


def test_system_keyspaces_and_the_superuser_role_are_refused_by_name() -> None:
    spec = ring(
        databases=[{"name": "system_auth"}, {"name": "System"}, {"name": "orders"}],
        users=[{"name": "cassandra"}, {"name": "system_app"}, {"name": "app"}],
    )
    assert messages(validate_spec(spec, None)) == [
        "spec.databases[0].name: database name system_auth is reserved by the engine (cassandra)",
        "spec.databases[1].name: database name System is reserved by the engine (cassandra)",
        "spec.users[0].name: user name cassandra is reserved by the engine (cassandra)",
        "spec.users[1].name: user name system_app is reserved by the engine (cassandra)",
    ]


@pytest.mark.parametrize(
    ("engine", "version", "database", "user"),
    [
        ("mariadb", "11.8", "mysql", "root"),
        ("mysql", "9.7", "performance_schema", "mysql"),
        ("postgresql", "17", "template1", "postgres"),
        ("mongodb", "8.0", "admin", None),
    ],
)
def test_every_engine_refuses_its_own_system_names(
    engine: str, version: str, database: str, user: str | None
) -> None:
    users = [{"name": user}] if user else []
    spec = cluster(
        datastore={"type": engine, "version": version}, databases=[{"name": database}], users=users
    )
    fields = [p.field for p in validate_spec(spec, None)]
    assert "spec.databases[0].name" in fields and ("spec.users[0].name" in fields) == bool(user)


def test_a_keyspace_replication_factor_fits_the_ring() -> None:
    assert validate_spec(ring(databases=[{"name": "a", "replicationFactor": 3}]), None) == []
    assert messages(validate_spec(ring(databases=[{"name": "a", "replicationFactor": 4}]), None)) == [
        "spec.databases[0].replicationFactor: replication factor 4 of a is above the ring size (3 nodes):"
        " a QUORUM write could never succeed"
    ]
    one = InstanceSpec.model_validate(
        {
            "datastore": {"type": "cassandra", "version": "5.0"},
            "databases": [{"name": "a", "replicationFactor": 2}],
        }
    )
    assert messages(validate_spec(one, None)) == [
        "spec.databases[0].replicationFactor: replication factor 2 of a is above the ring size (1 node):"
        " a QUORUM write could never succeed"
    ]
    assert messages(validate_spec(cluster(databases=[{"name": "a", "replicationFactor": 1}]), None)) == [
        "spec.databases[0].replicationFactor:"
        " mariadb replicates every database to every member: leave it unset"
    ]


def test_a_ring_does_not_shrink_below_a_keyspace_replication_factor() -> None:
    five = ring(replicas=5, databases=[{"name": "a"}, {"name": "b", "replicationFactor": 2}])
    to = ring(replicas=2, databases=[{"name": "a"}, {"name": "b", "replicationFactor": 2}])
    assert messages(validate_spec(to, five)) == [
        "spec.replicas: cannot scale the ring from 5 to 2 nodes: fewer nodes than the replication factor"
        " of a (replication factor 3); lower replicationFactor first"
    ]
    lowered = ring(
        replicas=2, databases=[{"name": "a", "replicationFactor": 2}, {"name": "b", "replicationFactor": 2}]
    )
    assert validate_spec(lowered, five) == []
    assert validate_spec(ring(replicas=3, databases=[{"name": "a"}]), five) == []  # default factor 3 fits


def test_storage_autogrow() -> None:
    good = {"size": "10Gi", "autogrow": {"threshold": 85, "increment": "5Gi", "maximum": "100Gi"}}
    assert validate_spec(cluster(storage=good), None) == []
    assert validate_spec(cluster(storage={"size": "10Gi", "autogrow": {"maximum": "10Gi"}}), None) == []
    low = cluster(storage={"size": "10Gi", "autogrow": {"maximum": "5Gi"}})
    assert messages(validate_spec(low, None)) == [
        "spec.storage.autogrow.maximum: 5Gi is below spec.storage.size (10Gi): autogrow could never grow"
    ]
    zero = cluster(storage={"size": "10Gi", "autogrow": {"maximum": "20Gi", "increment": "0"}})
    assert messages(validate_spec(zero, None)) == [
        "spec.storage.autogrow.increment: 0 must be a positive size"
    ]


@pytest.mark.parametrize(
    "autogrow",
    [
        {"maximum": "20Gi", "threshold": 49},
        {"maximum": "20Gi", "threshold": 96},
        {"maximum": "20Gi", "increment": "0%"},
        {"maximum": "20Gi", "increment": "101%"},
        {"maximum": "20Gi", "increment": "1 Gi"},
        {"maximum": "lots"},
        {"threshold": 80},  # maximum is required
    ],
)
def test_storage_autogrow_refused_by_the_model(autogrow: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="autogrow"):
        cluster(storage={"size": "10Gi", "autogrow": autogrow})


# Careless and hostile autogrow inputs the schema lets through, on a 10Gi volume: each refused by the
# operator on the field it is about, with the message the user reads (condition and Event).
TOO_SMALL = (
    'is less than 1Mi (a quantity is bytes; the volumes grow in whole MiB): write a size such as "2Gi", '
    'or a percentage with its sign, "20%"'
)
TOO_BIG = (
    "is more than a volume can be asked for (Kubernetes counts sizes in a signed 64-bit number of bytes: "
    "less than 8Ei)"
)


@pytest.mark.parametrize(
    ("autogrow", "message"),
    [
        ({"maximum": "20Gi", "increment": "0"}, "spec.storage.autogrow.increment: 0 must be a positive size"),
        ({"maximum": "20Gi", "increment": 0}, "spec.storage.autogrow.increment: 0 must be a positive size"),
        ({"maximum": "20Gi", "increment": "0.0Gi"},
         "spec.storage.autogrow.increment: 0.0Gi must be a positive size"),
        # 20 percent meant, 20 bytes written (YAML integer); a megabyte meant, a thousandth of a byte written
        ({"maximum": "20Gi", "increment": 20}, f"spec.storage.autogrow.increment: 20 {TOO_SMALL}"),
        ({"maximum": "20Gi", "increment": "1m"}, f"spec.storage.autogrow.increment: 1m {TOO_SMALL}"),
        ({"maximum": "20Gi", "increment": "1023Ki"}, f"spec.storage.autogrow.increment: 1023Ki {TOO_SMALL}"),
        ({"maximum": "20Gi", "increment": "5e9999"},
         "spec.storage.autogrow.increment: 5e9999 is not a Kubernetes quantity (e.g. 10Gi, 500M)"),
        ({"maximum": "5Gi"},
         "spec.storage.autogrow.maximum: 5Gi is below spec.storage.size (10Gi): autogrow could never grow"),
        ({"maximum": 100},  # 100Gi meant, 100 bytes written
         "spec.storage.autogrow.maximum: 100 is below spec.storage.size (10Gi): autogrow could never grow"),
        ({"maximum": "0"}, "spec.storage.autogrow.maximum: 0 must be a positive size"),
        ({"maximum": "9Ei"}, f"spec.storage.autogrow.maximum: 9Ei {TOO_BIG}"),
        ({"maximum": "1e1000"}, f"spec.storage.autogrow.maximum: 1e1000 {TOO_BIG}"),
    ],
    ids=[
        "increment-0", "increment-int-0", "increment-0.0Gi", "increment-int-20", "increment-1m",
        "increment-1023Ki", "increment-5e9999", "maximum-below-size", "maximum-int-100", "maximum-0",
        "maximum-9Ei", "maximum-1e1000",
    ],
)  # fmt: skip
def test_storage_autogrow_refused_by_validation(autogrow: dict[str, Any], message: str) -> None:
    spec = cluster(storage={"size": "10Gi", "autogrow": autogrow})
    assert messages(validate_spec(spec, None)) == [message]


@pytest.mark.parametrize(
    "autogrow",
    [
        {"maximum": "10Gi"},  # equal to the size: allowed (autogrow never grows; MaximumReached when full)
        {"maximum": "1Ei"},
        {"maximum": "8589934591Gi"},  # just under 8Ei
        {"maximum": "20Gi", "increment": "1Mi"},
        {"maximum": "20Gi", "increment": "1%"},
        {"maximum": "20Gi", "increment": "100%"},
        {"maximum": "20Gi", "increment": "1000000Ti"},  # one step to the maximum (capped there)
        {"maximum": "20Gi", "increment": "1e1000"},  # the same, however large
        {"maximum": "20Gi", "threshold": 50},
        {"maximum": "20Gi", "threshold": 95},
    ],
)
def test_storage_autogrow_edges_that_are_allowed(autogrow: dict[str, Any]) -> None:
    assert validate_spec(cluster(storage={"size": "10Gi", "autogrow": autogrow}), None) == []


def test_a_tiny_increment_on_a_large_volume_is_allowed() -> None:
    """10Mi on a 1Ti volume is slow (a 10Mi step per cycle), not wrong: allowed (docs/operations.md)."""
    spec = cluster(storage={"size": "1Ti", "autogrow": {"increment": "10Mi", "maximum": "2Ti"}})
    assert validate_spec(spec, None) == []


def test_autogrow_null_is_autogrow_off() -> None:
    assert cluster(storage={"size": "10Gi", "autogrow": None}).storage.autogrow is None


@pytest.mark.parametrize(
    ("autogrow", "loc", "error"),
    [
        ({"maximum": "20Gi", "threshold": 0}, "threshold", "greater_than_equal"),
        ({"maximum": "20Gi", "threshold": -1}, "threshold", "greater_than_equal"),
        ({"maximum": "20Gi", "threshold": 100}, "threshold", "less_than_equal"),
        ({"maximum": "20Gi", "threshold": 80.5}, "threshold", "int_from_float"),
        ({"maximum": "20Gi", "increment": "-1Gi"}, "increment", "string_pattern_mismatch"),
        ({"maximum": "20Gi", "increment": "1.5%"}, "increment", "string_pattern_mismatch"),
        ({"maximum": "20Gi", "increment": "abc"}, "increment", "string_pattern_mismatch"),
        ({"maximum": "20Gi", "increment": ""}, "increment", "string_pattern_mismatch"),
        ({"maximum": "20Gi", "increment": "1Gi "}, "increment", "string_pattern_mismatch"),
        ({"maximum": "20Gi", "increment": " 1Gi"}, "increment", "string_pattern_mismatch"),
        ({"maximum": "20Gi", "increment": "01%"}, "increment", "string_pattern_mismatch"),
        ({"maximum": ""}, "maximum", "string_pattern_mismatch"),
        ({"maximum": "abc"}, "maximum", "string_pattern_mismatch"),
        ({"maximum": "-1Gi"}, "maximum", "string_pattern_mismatch"),
        ({"maximum": None}, "maximum", "string_type"),
        ({}, "maximum", "missing"),
        ({"treshold": 70, "maximum": "20Gi"}, "treshold", "extra_forbidden"),  # the CRD prunes it first
    ],
)
def test_storage_autogrow_refused_by_the_model_on_its_field(
    autogrow: dict[str, Any], loc: str, error: str
) -> None:
    """What the CRD schema refuses, the model refuses too, on the same field (a second line: the operator
    parses only what the API server stored)."""
    with pytest.raises(ValidationError) as err:
        cluster(storage={"size": "10Gi", "autogrow": autogrow})
    (only,) = err.value.errors()
    assert (only["loc"], only["type"]) == (("storage", "autogrow", loc), error)


def test_storage_autogrow_on_an_instance_follows_the_same_rules() -> None:
    spec = instance(storage={"size": "1Gi", "autogrow": {"maximum": "2Gi"}})
    assert validate_spec(spec, None) == []
    low = instance(storage={"size": "10Gi", "autogrow": {"maximum": "5Gi"}})
    assert messages(validate_spec(low, None)) == [
        "spec.storage.autogrow.maximum: 5Gi is below spec.storage.size (10Gi): autogrow could never grow"
    ]
