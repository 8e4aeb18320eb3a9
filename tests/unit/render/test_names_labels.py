"""Child names, labels and owner references: literal values other packages depend on."""

from __future__ import annotations

from kubetrove.api.common import Engine
from kubetrove.render import labels, names
from kubetrove.render.names import ChildNames
from tests.unit.render.fakes import ref


def test_every_child_name() -> None:
    n = ChildNames("orders")
    assert {
        "statefulset": n.statefulset,
        "headless": n.headless_service,
        "rw": n.rw_service,
        "ro": n.ro_service,
        "credentials": n.credentials_secret,
        "agent_token": n.agent_token_secret,
        "config": n.config_map,
        "pdb": n.pdb,
        "pod": n.pod(2),
        "host": n.pod_host(2, "shop"),
        "claim": n.data_claim(2),
    } == {
        "statefulset": "orders",
        "headless": "orders-headless",
        "rw": "orders-rw",
        "ro": "orders-ro",
        "credentials": "orders-credentials",
        "agent_token": "orders-agent-token",
        "config": "orders-config",
        "pdb": "orders-pdb",
        "pod": "orders-2",
        "host": "orders-2.orders-headless.shop.svc",
        "claim": "data-orders-2",
    }


def test_labels_and_selectors() -> None:
    owner = ref(kind_is_cluster=True)
    assert labels.selector_labels(owner, Engine.POSTGRESQL) == {
        "app.kubernetes.io/name": "postgresql",
        "app.kubernetes.io/instance": "orders",
        "app.kubernetes.io/managed-by": "kubetrove",
    }
    assert labels.common_labels(owner, Engine.POSTGRESQL) == {
        "app.kubernetes.io/name": "postgresql",
        "app.kubernetes.io/instance": "orders",
        "app.kubernetes.io/managed-by": "kubetrove",
        "app.kubernetes.io/component": "database",
        "kubetrove.io/engine": "postgresql",
    }
    assert (
        labels.role_selector(owner, Engine.POSTGRESQL, names.ROLE_PRIMARY)["kubetrove.io/role"] == "primary"
    )
    assert tuple(labels.selector_labels(owner, Engine.MYSQL)) == names.SELECTOR_KEYS


def test_owner_reference_and_metadata() -> None:
    for is_cluster, kind in ((True, "DatabaseCluster"), (False, "DatabaseInstance")):
        owner = ref(kind_is_cluster=is_cluster)
        assert labels.owner_reference(owner) == {
            "apiVersion": "kubetrove.io/v1alpha1",
            "kind": kind,
            "name": "orders",
            "uid": "0b5f7a3e-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        meta = labels.metadata(owner, Engine.MONGODB, "orders-rw")
        assert meta["name"] == "orders-rw" and meta["namespace"] == "shop"
        assert meta["ownerReferences"] == [labels.owner_reference(owner)]
        assert meta["labels"] == labels.common_labels(owner, Engine.MONGODB)
