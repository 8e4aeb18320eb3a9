"""The registry is complete and every strategy's static data is well-formed."""

from __future__ import annotations

import re

import pytest

from kubetrove.api.common import Engine
from kubetrove.api.policies import BackupMethod
from kubetrove.datastores import registry
from kubetrove.datastores.base import Datastore, HAMode, ParamType
from kubetrove.datastores.registry import REGISTRY

STORES = [pytest.param(REGISTRY[e], id=str(e)) for e in Engine]
# repository:tag, the tag being the catalog key plus a patch number (8.4 -> 8.4.8, 17 -> 17.10):
# never "latest" nor a floating series tag.
PINNED = re.compile(r"^[a-z0-9/.-]+:[0-9]+(\.[0-9]+){1,2}$")


def test_every_engine_is_registered_under_its_own_name() -> None:
    assert set(REGISTRY) == set(Engine)
    for engine, store in REGISTRY.items():
        assert store.engine is engine
        assert registry.get(engine) is store
        assert registry.get(str(engine)) is store


def test_get_refuses_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="oracle"):
        registry.get("oracle")


def test_ha_modes_match_the_architecture() -> None:
    modes = {engine: store.ha_mode for engine, store in REGISTRY.items()}
    assert modes == {
        Engine.MYSQL: HAMode.OPERATOR_PRIMARY,
        Engine.MARIADB: HAMode.OPERATOR_PRIMARY,
        Engine.POSTGRESQL: HAMode.OPERATOR_PRIMARY,
        Engine.MONGODB: HAMode.ENGINE_ELECTED,
        Engine.CASSANDRA: HAMode.NO_PRIMARY,
    }


def test_supported_versions() -> None:
    versions = {str(engine): list(store.versions) for engine, store in REGISTRY.items()}
    assert versions == {
        "mysql": ["9.7"],
        "mariadb": ["10.11", "11.8"],
        "postgresql": ["15", "17", "18"],
        "mongodb": ["6.0"],
        "cassandra": ["5.0.8", "5.0"],
    }


@pytest.mark.parametrize("store", STORES)
def test_versions_have_pinned_images_of_their_own_series(store: Datastore) -> None:
    keys = list(store.versions)
    for key, info in store.versions.items():
        assert info.version == key
        assert PINNED.match(info.image), info.image
        # A line ("5.0": its current patch release) or a pinned patch release ("5.0.8": exactly it).
        tag = info.image.split(":")[1]
        assert re.fullmatch(re.escape(key) + r"\.[0-9]+", tag) or (key.count(".") == 2 and tag == key), tag
        assert info.major and key.startswith(info.major.split(".")[0])
        # Upgrade paths only go forward, from versions in the catalog.
        for source in info.upgrade_from:
            assert keys.index(source) < keys.index(key)


@pytest.mark.parametrize("store", STORES)
def test_ports_containers_and_config_file(store: Datastore) -> None:
    assert store.ports and len({p.name for p in store.ports}) == len(store.ports)
    assert all(0 < p.number < 65536 and re.fullmatch(r"[a-z][a-z0-9-]{0,14}", p.name) for p in store.ports)
    assert store.config_file.mount_dir.startswith("/") and store.config_file.file_name
    assert store.position_type
    assert store.backup_methods and BackupMethod.AUTO not in store.backup_methods
    for version in store.versions:
        c = store.container(version)
        # Every official image runs its engine as uid/gid 999.
        assert (c.run_as_user, c.run_as_group) == (999, 999)
        assert c.data_dir.startswith("/") and all(d.startswith("/") for d in c.scratch_dirs)
        assert "/tmp" in c.scratch_dirs
        assert c.read_only_root_filesystem
        # Secrets never appear as plain env values; the same Secret key is not read twice.
        assert not set(c.env) & set(c.secret_env)
        assert all(re.fullmatch(r"[a-z][a-z0-9-]*", key) for key in c.secret_env.values())


@pytest.mark.parametrize("store", STORES)
def test_catalog_entries_are_well_formed(store: Datastore) -> None:
    assert len(store.parameters) >= 15
    for name, spec in store.parameters.items():
        assert spec.name == name and spec.description
        if spec.type in (ParamType.BOOL, ParamType.ENUM):
            assert len(spec.allowed) >= 2 and spec.minimum is None and spec.maximum is None
        else:
            assert not spec.allowed
        if spec.type in (ParamType.INT, ParamType.FLOAT, ParamType.SIZE):
            assert spec.minimum is not None and spec.maximum is not None and spec.minimum <= spec.maximum
        if spec.type is ParamType.BOOL:
            assert len(spec.allowed) == 2


@pytest.mark.parametrize("store", STORES)
def test_catalog_mixes_dynamic_and_restart_parameters(store: Datastore) -> None:
    # Both kinds exist for every engine: the rolling-restart path and the live path are both exercised.
    assert {spec.dynamic for spec in store.parameters.values()} == {True, False}


@pytest.mark.parametrize("store", STORES)
def test_user_parameters_cannot_override_fixed_settings(store: Datastore) -> None:
    # A fixed setting's name rendered without user parameters must not be in the catalog (else a user
    # could, say, turn off the binary log or GTIDs).
    fixed = store.render_config({})
    names = set(re.findall(r"^[ -]*([A-Za-z_][A-Za-z0-9_]*)\s*[=:]", fixed, re.MULTILINE))
    assert {"port", "log_bin", "num_tokens"} & names, fixed
    leaf_names = {name.rsplit(".", 1)[-1] for name in store.parameters}  # mongodb's are dotted paths
    assert not names & leaf_names


def test_mysql_and_mariadb_differ_where_the_engines_differ() -> None:
    mysql, mariadb = REGISTRY[Engine.MYSQL], REGISTRY[Engine.MARIADB]
    assert mysql.position_type != mariadb.position_type
    assert (
        "innodb_redo_log_capacity" in mysql.parameters
        and "innodb_redo_log_capacity" not in mariadb.parameters
    )
    assert "innodb_log_file_size" in mariadb.parameters and "innodb_log_file_size" not in mysql.parameters
    assert mysql.container("9.7").args == ("mysqld",)
    assert mariadb.container("11.8").args == ("mariadbd",)
    assert mysql.container("9.7").secret_env == {"MYSQL_ROOT_PASSWORD": "root-password"}
    assert mariadb.container("11.8").secret_env == {"MARIADB_ROOT_PASSWORD": "root-password"}
    assert "gtid_strict_mode = ON" in mariadb.render_config({})
    assert "gtid_mode = ON" in mysql.render_config({})


@pytest.mark.parametrize("engine", [Engine.MYSQL, Engine.MARIADB])
def test_mysql_family_cluster_members_start_fenced_and_instances_do_not(engine: Engine) -> None:
    store = REGISTRY[engine]
    assert "read_only = ON" in store.render_config({}, clustered=True).splitlines()
    assert "read_only = ON" not in store.render_config({}).splitlines()


def test_only_mariadb_restarts_a_demoted_member_differently() -> None:
    mariadb = REGISTRY[Engine.MARIADB].container("11.8")
    assert mariadb.demoted_marker == "/var/lib/mysql/kubetrove-demoted"
    assert (
        f'if [ -e {mariadb.demoted_marker} ]; then set -- "$@" --init-rpl-role=SLAVE; fi'
        in mariadb.command[2]
    )
    assert REGISTRY[Engine.MYSQL].container("9.7").demoted_marker == ""
    assert "init-rpl-role" not in REGISTRY[Engine.MYSQL].container("9.7").command[2]


def test_a_mongodb_instance_is_standalone_and_cluster_members_form_a_set() -> None:
    mongodb = REGISTRY[Engine.MONGODB]
    assert "replSetName: rs0" in mongodb.render_config({}, clustered=True)
    # Nothing initiates a one-member set for an instance: it would never become writable.
    assert "replication" not in mongodb.render_config({})
