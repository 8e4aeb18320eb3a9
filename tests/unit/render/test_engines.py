"""render() for each of the five real engines from the registry: snapshots and invariants.

Snapshots: ``snapshots/<engine>-instance.yaml`` and ``snapshots/<engine>-cluster.yaml`` (see snapshots.py
to regenerate after a deliberate change). The registry is looked up inside each test, so a missing
engine fails its own tests instead of breaking collection of the whole suite.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from kubetrove.api.common import Engine
from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import Datastore, HAMode
from kubetrove.render import Manifests, render
from tests.unit.render import checks, snapshots
from tests.unit.render.fakes import inputs

# A representative version per engine, and one dynamic and one restart-requiring parameter with a valid
# value: (version, (dynamic name, value, changed value), (restart name, value, changed value)).
CASES: dict[Engine, tuple[str, tuple[str, str, str], tuple[str, str, str]]] = {
    Engine.MYSQL: ("9.7", ("max_connections", "500", "800"), ("performance_schema", "OFF", "ON")),
    Engine.MARIADB: ("11.8", ("max_connections", "500", "800"), ("performance_schema", "OFF", "ON")),
    Engine.POSTGRESQL: ("17", ("work_mem", "8MB", "16MB"), ("shared_buffers", "256MB", "512MB")),
    Engine.MONGODB: (
        "6.0",
        ("operationProfiling.slowOpThresholdMs", "200", "500"),
        ("net.maxIncomingConnections", "1000", "2000"),
    ),
    Engine.CASSANDRA: ("5.0", ("compaction_throughput", "64", "128"), ("memtable_heap_space", "512", "1024")),
}
ENGINES = list(Engine)


def store_of(engine: Engine) -> Datastore:
    from kubetrove.datastores.registry import REGISTRY

    return REGISTRY[engine]


def wire(engine: Engine, *, cluster: bool, dynamic: int = 1, restart: int = 1) -> dict[str, Any]:
    """The spec (camelCase wire form): an instance with defaults, or a 3-member cluster with everything."""
    version, dyn, rst = CASES[engine]
    spec: dict[str, Any] = {"datastore": {"type": engine.value, "version": version}}
    if cluster:
        spec |= {
            "replicas": 3,
            "parameters": {dyn[0]: dyn[dynamic], rst[0]: rst[restart]},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
            "storage": {"size": "20Gi", "storageClassName": "fast-ssd"},
            "restoreFrom": {"backup": "orders-nightly"},
        }
    return copy.deepcopy(spec)


def spec_of(engine: Engine, *, cluster: bool, dynamic: int = 1, restart: int = 1) -> InstanceSpec:
    data = wire(engine, cluster=cluster, dynamic=dynamic, restart=restart)
    return ClusterSpec.from_wire(data) if cluster else InstanceSpec.from_wire(data)


def run(engine: Engine, spec: InstanceSpec) -> Manifests:
    store = store_of(engine)
    return render(inputs(spec, extra_keys=_secret_keys(store, spec)), store)


def _secret_keys(store: Datastore, spec: InstanceSpec) -> set[str]:
    return set(store.container(spec.datastore.version).credential_keys)


@pytest.mark.parametrize("engine", ENGINES)
def test_case_table_is_valid_for_the_catalog(engine: Engine) -> None:
    store = store_of(engine)
    version, dyn, rst = CASES[engine]
    assert version in store.versions
    assert store.parameters[dyn[0]].dynamic is True
    assert store.parameters[rst[0]].dynamic is False
    for i in (1, 2):
        assert store.validate_parameters({dyn[0]: dyn[i], rst[0]: rst[i]}) == []
    assert store.validate_topology(3) == []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["instance", "cluster"])
def test_snapshot(engine: Engine, kind: str) -> None:
    manifests = run(engine, spec_of(engine, cluster=kind == "cluster"))
    snapshots.assert_matches(f"{engine.value}-{kind}", manifests.all())


@pytest.mark.parametrize("engine", ENGINES)
def test_security_context(engine: Engine) -> None:
    store = store_of(engine)
    for cluster in (False, True):
        spec = spec_of(engine, cluster=cluster)
        ro_root = store.container(spec.datastore.version).read_only_root_filesystem
        checks.assert_restricted(run(engine, spec), engine_read_only_root=ro_root)
        checks.assert_pod_consistent(run(engine, spec))


@pytest.mark.parametrize("engine", ENGINES)
def test_no_secret_value_outside_the_secrets(engine: Engine) -> None:
    store = store_of(engine)
    for cluster in (False, True):
        spec = spec_of(engine, cluster=cluster)
        given = inputs(spec, extra_keys=_secret_keys(store, spec))
        checks.assert_no_secret_values(render(given, store), given)


@pytest.mark.parametrize("engine", ENGINES)
def test_deterministic_and_config_hash(engine: Engine) -> None:
    base = run(engine, spec_of(engine, cluster=True))
    assert base == run(engine, spec_of(engine, cluster=True))
    assert snapshots.dump(base.all()) == snapshots.dump(run(engine, spec_of(engine, cluster=True)).all())

    dynamic = run(engine, spec_of(engine, cluster=True, dynamic=2))
    assert dynamic.statefulset == base.statefulset
    assert dynamic.config_map != base.config_map

    restart = run(engine, spec_of(engine, cluster=True, restart=2))
    key = "kubetrove.io/config-hash"
    old = base.statefulset["spec"]["template"]
    new = copy.deepcopy(restart.statefulset["spec"]["template"])
    assert new["metadata"]["annotations"][key] != old["metadata"]["annotations"][key]
    new["metadata"]["annotations"][key] = old["metadata"]["annotations"][key]
    assert new == old


@pytest.mark.parametrize("engine", ENGINES)
def test_rw_ro_selectors_follow_the_ha_mode(engine: Engine) -> None:
    store = store_of(engine)
    selector = {
        "app.kubernetes.io/name": engine.value,
        "app.kubernetes.io/instance": "orders",
        "app.kubernetes.io/managed-by": "kubetrove",
    }
    cluster = run(engine, spec_of(engine, cluster=True))
    if store.ha_mode in (HAMode.OPERATOR_PRIMARY, HAMode.ENGINE_ELECTED):  # a loop labels the primary
        assert cluster.rw_service["spec"]["selector"] == {**selector, "kubetrove.io/role": "primary"}
        assert cluster.ro_service["spec"]["selector"] == {**selector, "kubetrove.io/role": "replica"}
    else:
        assert cluster.rw_service["spec"]["selector"] == selector
        assert cluster.ro_service["spec"]["selector"] == selector
    instance = run(engine, spec_of(engine, cluster=False))
    assert instance.rw_service["spec"]["selector"] == selector
    assert instance.ro_service["spec"]["selector"] == selector
    client = store.ports[0]
    for svc in (cluster.rw_service, cluster.ro_service):
        assert svc["spec"]["ports"] == [
            {"name": client.name, "port": client.number, "targetPort": client.name, "protocol": "TCP"}
        ]


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_container_follows_the_strategy(engine: Engine) -> None:
    store = store_of(engine)
    spec = spec_of(engine, cluster=True)
    strategy = store.container(spec.datastore.version)
    pod = run(engine, spec).statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == store.versions[spec.datastore.version].image
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"  # the status shows the log tail
    assert container.get("command", []) == list(strategy.command)
    assert container.get("args", []) == list(strategy.args)
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[strategy.data_dir] == "data"
    assert mounts[store.config_file.mount_dir] == "config"
    assert all(d in mounts for d in strategy.scratch_dirs)
    assert pod["securityContext"]["runAsUser"] == strategy.run_as_user
    agent = pod["containers"][1]
    assert agent["args"][:2] == [f"--engine={engine.value}", f"--engine-port={store.ports[0].number}"]
    assert (f"--engine-user={strategy.admin_user}" in agent["args"]) is bool(strategy.admin_user)
    config = run(engine, spec).config_map["data"]
    assert list(config) == [store.config_file.file_name]


@pytest.mark.parametrize("engine", ENGINES)
def test_the_image_registry_prefixes_the_catalog_image(engine: Engine) -> None:
    store = store_of(engine)
    spec = spec_of(engine, cluster=True)
    base = inputs(spec, extra_keys=_secret_keys(store, spec))
    moved = render(dataclasses.replace(base, image_registry="registry.example.com:5443/dbs"), store)
    (container, *_) = moved.statefulset["spec"]["template"]["spec"]["containers"]
    catalog = store.versions[spec.datastore.version].image
    assert container["image"] == f"registry.example.com:5443/dbs/{catalog}"


def test_an_image_in_the_spec_replaces_the_catalogs() -> None:
    data = wire(Engine.MARIADB, cluster=False)
    data["datastore"]["image"] = "mirror.example:5000/library/mariadb:11.8.9"
    container = run(Engine.MARIADB, InstanceSpec.from_wire(data)).statefulset["spec"]["template"]["spec"]
    assert container["containers"][0]["image"] == "mirror.example:5000/library/mariadb:11.8.9"
