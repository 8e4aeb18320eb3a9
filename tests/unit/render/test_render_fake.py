"""render() against a small fake Datastore: every decision that does not depend on a real engine."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from kubetrove.api.specs import ClusterSpec, InstanceSpec
from kubetrove.datastores.base import EngineContainer, HAMode, ServerTLS
from kubetrove.render import Manifests, render
from tests.unit.render import checks, snapshots
from tests.unit.render.fakes import FakeDatastore, inputs

BASE: dict[str, Any] = {
    "datastore": {"type": "mysql", "version": "8.4"},
    "parameters": {"max_connections": "200", "buffer_size": "1G"},
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    "storage": {"size": "10Gi", "storageClassName": "fast"},
}
SELECTOR = {
    "app.kubernetes.io/name": "mysql",
    "app.kubernetes.io/instance": "orders",
    "app.kubernetes.io/managed-by": "kubetrove",
}


def cluster(**changes: Any) -> ClusterSpec:
    return ClusterSpec.from_wire({**copy.deepcopy(BASE), "replicas": 3, **changes})


def instance(**changes: Any) -> InstanceSpec:
    return InstanceSpec.from_wire({**copy.deepcopy(BASE), **changes})


def run(spec: InstanceSpec, store: FakeDatastore | None = None) -> Manifests:
    return render(inputs(spec), store or FakeDatastore())


def template(m: Manifests) -> dict[str, Any]:
    t: dict[str, Any] = m.statefulset["spec"]["template"]
    return t


def test_snapshots() -> None:
    snapshots.assert_matches("fake-cluster", run(cluster(restoreFrom={"backup": "nightly"})).all())
    snapshots.assert_matches("fake-instance", run(instance()).all())


def test_apply_order() -> None:
    kinds = [(m["kind"], m["metadata"]["name"]) for m in run(cluster()).all()]
    assert kinds == [
        ("Secret", "orders-credentials"),
        ("Secret", "orders-agent-token"),
        ("ConfigMap", "orders-config"),
        ("Service", "orders-headless"),
        ("Service", "orders-rw"),
        ("Service", "orders-ro"),
        ("PodDisruptionBudget", "orders-pdb"),
        ("StatefulSet", "orders"),
    ]
    assert [m["kind"] for m in run(instance()).all()][-2:] == ["Service", "StatefulSet"]


@pytest.mark.parametrize(
    ("ha_mode", "is_cluster", "rw_role", "ro_role"),
    [
        (HAMode.OPERATOR_PRIMARY, True, "primary", "replica"),
        (HAMode.OPERATOR_PRIMARY, False, None, None),  # an instance: nobody sets role labels
        (HAMode.ENGINE_ELECTED, True, "primary", "replica"),  # the loop labels the elected primary
        (HAMode.ENGINE_ELECTED, False, None, None),
        (HAMode.NO_PRIMARY, True, None, None),
        (HAMode.NO_PRIMARY, False, None, None),
    ],
)
def test_rw_ro_selectors_per_ha_mode(
    ha_mode: HAMode, is_cluster: bool, rw_role: str | None, ro_role: str | None
) -> None:
    m = run(cluster() if is_cluster else instance(), FakeDatastore(ha_mode=ha_mode))

    def expected(role: str | None) -> dict[str, str]:
        return SELECTOR if role is None else {**SELECTOR, "kubetrove.io/role": role}

    port = [{"name": "db", "port": 3306, "targetPort": "db", "protocol": "TCP"}]
    assert m.rw_service["spec"] == {"type": "ClusterIP", "selector": expected(rw_role), "ports": port}
    assert m.ro_service["spec"] == {"type": "ClusterIP", "selector": expected(ro_role), "ports": port}
    assert m.headless_service["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": SELECTOR,
        "ports": [
            {"name": "db", "port": 3306, "targetPort": "db", "protocol": "TCP"},
            {"name": "admin", "port": 33062, "targetPort": "admin", "protocol": "TCP"},
            {"name": "agent", "port": 8432, "targetPort": "agent", "protocol": "TCP"},
        ],
    }


def test_pdb_only_for_two_or_more_members() -> None:
    pdb = run(cluster()).pdb
    assert pdb is not None
    assert {k: v for k, v in pdb.items() if k != "metadata"} == {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": SELECTOR}},
    }
    assert pdb["metadata"]["name"] == "orders-pdb"
    assert run(cluster(replicas=2)).pdb is not None
    assert run(cluster(replicas=1)).pdb is None
    assert run(instance()).pdb is None


def test_secrets_carry_the_inputs() -> None:
    m = run(cluster())
    assert m.credentials_secret["type"] == "Opaque"
    assert m.credentials_secret["stringData"] == {
        "password": "s3cr3t-pw-XYZ",
        "replication-password": "r3pl-pw-QRS",
        "username": "admin-U5ER-nm",
    }
    assert m.agent_token_secret["stringData"] == {"token": "t0ken-ABC-123"}


def test_no_secret_value_outside_the_secrets() -> None:
    for spec in (cluster(restoreFrom={"backup": "nightly"}), instance()):
        checks.assert_no_secret_values(render(inputs(spec), FakeDatastore()), inputs(spec))


def test_security_context() -> None:
    checks.assert_restricted(run(cluster(restoreFrom={"backup": "x"})), engine_read_only_root=True)
    writable = run(instance(), FakeDatastore(read_only_root_filesystem=False))
    checks.assert_restricted(writable, engine_read_only_root=False)
    checks.assert_pod_consistent(run(cluster(restoreFrom={"backup": "x"})))


def test_every_child_has_metadata_from_labels_py() -> None:
    for m in run(cluster()).all():
        meta = m["metadata"]
        assert meta["namespace"] == "shop"
        assert meta["labels"]["app.kubernetes.io/instance"] == "orders"
        assert [o["uid"] for o in meta["ownerReferences"]] == ["0b5f7a3e-uid"]
        assert meta["ownerReferences"][0]["kind"] == "DatabaseCluster"


def test_deterministic() -> None:
    assert run(cluster()) == run(cluster())
    assert snapshots.dump(run(cluster()).all()) == snapshots.dump(run(cluster()).all())
    # Parameter order in the spec does not matter.
    reordered = cluster(parameters={"buffer_size": "1G", "max_connections": "200"})
    assert run(reordered) == run(cluster())


def test_generation_token_and_passwords_do_not_roll_pods() -> None:
    base = inputs(cluster())
    changed = dataclasses.replace(
        base,
        owner=dataclasses.replace(base.owner, generation=99),
        agent_token="rotated",
        credentials={k: v + "-rotated" for k, v in base.credentials.items()},
    )
    assert render(changed, FakeDatastore()).statefulset == render(base, FakeDatastore()).statefulset


def test_dynamic_parameter_change_keeps_the_pod_template() -> None:
    before, after = run(cluster()), run(cluster(parameters={"max_connections": "500", "buffer_size": "1G"}))
    assert template(after) == template(before)
    assert after.config_map != before.config_map  # the file still changes, for the next restart
    assert "max_connections = 500" in after.config_map["data"]["kubetrove.cnf"]


def test_restart_parameter_change_only_changes_the_config_hash() -> None:
    before, after = run(cluster()), run(cluster(parameters={"max_connections": "200", "buffer_size": "2G"}))
    key = "kubetrove.io/config-hash"
    old, new = template(before), template(after)
    assert old["metadata"]["annotations"][key] != new["metadata"]["annotations"][key]
    new["metadata"]["annotations"][key] = old["metadata"]["annotations"][key]
    assert new == old


def test_unknown_parameter_counts_as_restart_requiring() -> None:
    before = run(cluster())
    after = run(cluster(parameters={**BASE["parameters"], "mystery": "1"}))
    key = "kubetrove.io/config-hash"
    assert template(before)["metadata"]["annotations"][key] != template(after)["metadata"]["annotations"][key]


def test_restore_init_container_only_with_restore_from() -> None:
    assert "initContainers" not in template(run(cluster()))["spec"]
    (init,) = template(run(cluster(restoreFrom={"backup": "nightly"})))["spec"]["initContainers"]
    assert init["name"] == "restore"
    assert init["image"] == "registry.local/kubetrove-agent:0.1.0"
    assert init["command"] == ["kubetrove-agent"]
    # What agent/backup/restore.py's CLI accepts: the RestoreRequest as a file from the restore Secret.
    assert init["args"] == ["restore", "--request-file=/var/run/kubetrove/restore/request.json"]
    assert "env" not in init
    pod = template(run(cluster(restoreFrom={"backup": "nightly"})))["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "restore-request"]
    assert volume["secret"]["secretName"].endswith("-restore")


def test_engine_container() -> None:
    pod = template(run(cluster()))["spec"]
    engine, agent = pod["containers"]
    assert (engine["name"], agent["name"]) == ("engine", "agent")
    assert engine["image"] == "registry.local/fake-db:8.4.6"
    assert engine["command"] == ["fake-db"]
    assert engine["env"] == [
        {
            "name": "FAKE_ROOT_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "orders-credentials", "key": "password"}},
        },
        {"name": "FAKE_VERSION", "value": "8.4"},
        {"name": "TZ", "value": "UTC"},
    ]
    assert engine["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert engine["volumeMounts"] == [
        {"name": "data", "mountPath": "/var/lib/fake"},
        {"name": "config", "mountPath": "/etc/fake/conf.d", "readOnly": True},
        {"name": "scratch-0", "mountPath": "/var/run/fake"},
        {"name": "scratch-1", "mountPath": "/tmp"},
    ]
    assert "livenessProbe" not in engine


def test_agent_sidecar() -> None:
    pod = template(run(cluster()))["spec"]
    agent = pod["containers"][1]
    assert agent["image"] == "registry.local/kubetrove-agent:0.1.0"
    assert agent["command"] == ["kubetrove-agent"]
    assert agent["args"] == [
        "--engine=mysql",
        "--engine-port=3306",
        "--data-dir=/var/lib/fake",
        "--engine-user=fakeadmin",
        "--engine-password-file=/var/run/kubetrove/credentials/password",
    ]
    assert agent["env"] == [
        {"name": "KUBETROVE_AGENT_TOKEN_FILE", "value": "/var/run/kubetrove/agent-token/token"}
    ]
    assert agent["ports"] == [{"name": "agent", "containerPort": 8432, "protocol": "TCP"}]
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "agent", "scheme": "HTTP"}
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "agent", "scheme": "HTTP"}
    # Liveness waits for the first answer: a slow start on a busy node is not killed (up to 10 minutes).
    assert agent["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "agent", "scheme": "HTTP"}
    assert agent["startupProbe"]["periodSeconds"] * agent["startupProbe"]["failureThreshold"] == 600
    assert agent["volumeMounts"] == [
        {"name": "data", "mountPath": "/var/lib/fake"},
        {"name": "credentials", "mountPath": "/var/run/kubetrove/credentials", "readOnly": True},
        {"name": "agent-token", "mountPath": "/var/run/kubetrove/agent-token", "readOnly": True},
        {"name": "agent-tmp", "mountPath": "/tmp"},
    ]
    assert pod["volumes"][:3] == [
        {"name": "config", "configMap": {"name": "orders-config"}},
        {"name": "credentials", "secret": {"secretName": "orders-credentials", "defaultMode": 0o440}},
        {"name": "agent-token", "secret": {"secretName": "orders-agent-token", "defaultMode": 0o440}},
    ]


def test_agent_without_admin_account() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoAdmin(FakeDatastore):
        def container(self, version: str, tls: ServerTLS | None = None) -> EngineContainer:
            return dataclasses.replace(super().container(version), admin_user="", admin_password_key="")

    agent = template(run(cluster(), NoAdmin()))["spec"]["containers"][1]
    assert agent["args"] == ["--engine=mysql", "--engine-port=3306", "--data-dir=/var/lib/fake"]


def test_statefulset_spec() -> None:
    spec = run(cluster(deletionPolicy={"volumes": "Delete"})).statefulset["spec"]
    assert spec["replicas"] == 3
    assert spec["serviceName"] == "orders-headless"
    assert spec["selector"] == {"matchLabels": SELECTOR}
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] == "orders"
    assert "kubetrove.io/role" not in spec["template"]["metadata"]["labels"]
    assert spec["template"]["spec"]["affinity"]["podAntiAffinity"] == {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": SELECTOR},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "10Gi"}},
        "storageClassName": "fast",
    }
    default_class = run(instance(storage={"size": "5Gi"})).statefulset["spec"]
    assert default_class["replicas"] == 1
    assert "storageClassName" not in default_class["volumeClaimTemplates"][0]["spec"]


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"mysql 9\.9 is not in the catalog"):
        run(cluster(datastore={"type": "mysql", "version": "9.9"}))


def test_missing_credential_key_is_a_clear_error() -> None:
    store = FakeDatastore()
    no_password = dataclasses.replace(inputs(cluster()), credentials={"username": "root"})
    with pytest.raises(ValueError, match="credentials lack key"):
        render(no_password, store)


def test_a_pvc_backup_target_is_mounted_in_the_agent_and_restore_containers() -> None:
    spec = instance(backup={"storage": {"pvc": {"claimName": "backups"}}}, restoreFrom={"backup": "nightly"})
    pod = template(run(spec))["spec"]
    assert {"name": "backup-pvc", "persistentVolumeClaim": {"claimName": "backups"}} in pod["volumes"]
    mount = {"name": "backup-pvc", "mountPath": "/var/lib/kubetrove/backups/backups"}
    assert mount in pod["containers"][1]["volumeMounts"]  # the agent writes backups there
    assert mount in pod["initContainers"][0]["volumeMounts"]  # and the restore reads them
    assert mount not in pod["containers"][0]["volumeMounts"]  # never the engine
    without = template(run(instance()))["spec"]
    assert all(v["name"] != "backup-pvc" for v in without["volumes"])


def test_no_network_policy_unless_the_operator_setting_names_its_namespace() -> None:
    assert run(cluster()).network_policy is None
    assert "NetworkPolicy" not in [m["kind"] for m in run(cluster()).all()]


def test_network_policy_admits_the_operator_to_the_agent_and_the_namespace_to_the_engine() -> None:
    spec = cluster()
    m = render(dataclasses.replace(inputs(spec), network_policy_from="kubetrove-system"), FakeDatastore())
    policy = m.network_policy
    assert policy is not None and policy["metadata"]["name"] == "orders-net"
    assert policy["metadata"]["ownerReferences"][0]["name"] == "orders"
    assert policy["spec"] == {
        "podSelector": {"matchLabels": SELECTOR},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": "kubetrove-system"}
                        },
                        "podSelector": {},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 8432}],
            },
            {
                "from": [{"podSelector": {}}],
                "ports": [{"protocol": "TCP", "port": 3306}, {"protocol": "TCP", "port": 33062}],
            },
        ],
    }
    # Applied before the StatefulSet: the pods never start without their policy.
    kinds = [x["kind"] for x in m.all()]
    assert kinds.index("NetworkPolicy") < kinds.index("StatefulSet")
