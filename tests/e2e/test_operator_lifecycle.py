"""Every engine, instance and cluster: apply the example, see every child with the expected fields, Ready.

kwok marks the pods Running/Ready (no real engine runs), so Ready here means what the operator can see:
the StatefulSet's members are ready, the latest generation is applied, and the endpoints are published.
"""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from kubetrove.datastores.registry import REGISTRY
from kubetrove.render.names import ANNOTATION_CONFIG_HASH, ChildNames

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import Operator, apply_cr, example, wait_phase

CASES = [(e.value, shape) for e in REGISTRY for shape in ("instance", "cluster")]


@pytest.mark.parametrize(("engine", "shape"), CASES, ids=[f"{e}-{s}" for e, s in CASES])
def test_example_becomes_ready(
    local_cluster: LocalCluster, operator: Operator, namespace: str, engine: str, shape: str
) -> None:
    body = example(f"{engine}-{shape}", namespace)
    apply_cr(local_cluster, body)
    obj = wait_phase(local_cluster.api, body, "Ready", op=operator)
    name, uid = body["metadata"]["name"], obj["metadata"]["uid"]
    names, store = ChildNames(name), REGISTRY[next(e for e in REGISTRY if e.value == engine)]
    replicas = body["spec"].get("replicas", 1)
    port = store.ports[0].number
    core, apps = client.CoreV1Api(local_cluster.api), client.AppsV1Api(local_cluster.api)

    sts = apps.read_namespaced_stateful_set(names.statefulset, namespace)
    assert sts.spec.replicas == replicas and sts.status.ready_replicas == replicas
    assert [o.uid for o in sts.metadata.owner_references] == [uid]
    assert ANNOTATION_CONFIG_HASH in sts.spec.template.metadata.annotations
    engine_ctr = next(c for c in sts.spec.template.spec.containers if c.name == "engine")
    assert engine_ctr.resources.requests == body["spec"]["resources"]["requests"]
    claim = sts.spec.volume_claim_templates[0].spec.resources.requests["storage"]
    assert claim == body["spec"]["storage"]["size"]
    expected_strategy = (
        "OnDelete" if shape == "cluster" and store.ha_mode.value == "operator-primary" else None
    )
    assert sts.spec.update_strategy.type == (expected_strategy or "RollingUpdate")

    creds = core.read_namespaced_secret(names.credentials_secret, namespace)
    # Exactly the keys the engine and its agent read (Cassandra: only the agent's superuser password),
    # each generated non-empty.
    keys = set(store.container(body["spec"]["datastore"]["version"]).credential_keys)
    assert keys and set(creds.data or {}) == keys
    assert all(base64.b64decode(v) for v in (creds.data or {}).values())
    assert core.read_namespaced_secret(names.agent_token_secret, namespace).data["token"]
    assert core.read_namespaced_config_map(names.config_map, namespace).data
    for svc_name in (names.headless_service, names.rw_service, names.ro_service):
        svc = core.read_namespaced_service(svc_name, namespace)
        assert port in [p.port for p in svc.spec.ports], svc_name
        assert [o.uid for o in svc.metadata.owner_references] == [uid]
    assert core.read_namespaced_service(names.headless_service, namespace).spec.cluster_ip == "None"
    pdbs = client.PolicyV1Api(local_cluster.api).list_namespaced_pod_disruption_budget(namespace).items
    assert len(pdbs) == (1 if replicas > 1 else 0)
    claims = core.list_namespaced_persistent_volume_claim(namespace).items
    assert sorted(c.metadata.name for c in claims) == sorted(names.data_claim(i) for i in range(replicas))

    status = obj["status"]
    assert status["credentialsSecret"] == names.credentials_secret
    assert status["endpoints"] == {
        "readWrite": f"{names.rw_service}.{namespace}.svc:{port}",
        "readOnly": f"{names.ro_service}.{namespace}.svc:{port}",
    }
    assert status["version"] == body["spec"]["datastore"]["version"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    workload = {k: conditions.get(k) for k in ("Ready", "Progressing", "Degraded", "Failed")}
    assert workload == {"Ready": "True", "Progressing": "False", "Degraded": "False", "Failed": "False"}
    # kwok runs no agent: spec.users cannot be applied, and the status must never claim they were.
    assert conditions.get("UsersReady", "False") == "False"
