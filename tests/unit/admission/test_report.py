"""A DatabasePolicy's status: usage per selected namespace, quotas exceeded, and existing violators
(reported with one Warning Event each, never changed)."""

from __future__ import annotations

import logging
from typing import Any

from kubetrove.admission.report import REASON, refresh
from kubetrove.k8s.kinds import CUSTOM, EVENT
from tests.unit.reconcile.fake_kube import FakeKube

LOG = logging.getLogger("test")


def cluster(
    ns: str, name: str, version: str = "10.11", replicas: int = 3, size: str = "10Gi"
) -> dict[str, Any]:
    return {
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabaseCluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"datastore": {"type": "mariadb", "version": version}, "replicas": replicas,
                 "storage": {"size": size}},
    }  # fmt: skip


def seeded() -> tuple[FakeKube, dict[str, Any]]:
    kube = FakeKube()
    for ns, env in (("pay", "prod"), ("web", "prod"), ("lab", "dev")):
        kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"env": env}}})
    kube.put(cluster("pay", "old", version="11.4", size="30Gi"))
    kube.put(cluster("pay", "ok"))
    kube.put(cluster("lab", "anything", version="11.8"))
    policy = kube.put({
        "apiVersion": "kubetrove.io/v1alpha1", "kind": "DatabasePolicy", "metadata": {"name": "prod-rules"},
        "spec": {"namespaceSelector": {"matchLabels": {"env": "prod"}},
                 "engines": [{"type": "mariadb", "versions": ["10.11"]}],
                 "limits": {"maxStorage": "20Gi"}, "quotas": {"storage": "100Gi", "clusters": 5}},
    })  # fmt: skip
    return kube, policy


def events(kube: FakeKube) -> list[dict[str, Any]]:
    return [o for (_, kind, _, _), o in kube.objects.items() if kind == EVENT.kind]


async def test_usage_quotas_and_violators_are_reported_once() -> None:
    kube, policy = seeded()
    status = await refresh(kube, policy, (), LOG)
    assert [(u.namespace, u.clusters, u.storage, u.over_quota) for u in status.namespaces] == [
        ("pay", 2, "120Gi", ["storage"]),
        ("web", 0, "0", []),
    ]
    (violator,) = status.violators
    assert (violator.namespace, violator.name) == ("pay", "old")
    assert violator.message == (
        "spec.datastore.version: mariadb 11.4 is not allowed in namespace pay (allowed: mariadb 10.11); "
        "spec.storage.size: 30Gi is over the limit of 20Gi"
    )
    stored = kube.find(CUSTOM["DatabasePolicy"], None, "prod-rules")
    assert stored["status"]["violators"][0]["name"] == "old"
    (event,) = events(kube)
    assert event["reason"] == REASON and event["regarding"]["name"] == "old" and event["type"] == "Warning"
    assert event["note"].startswith("DatabasePolicy prod-rules: spec.datastore.version")
    # The next report finds the same violator: no second Event; the resource itself is untouched.
    await refresh(kube, stored, (), LOG)
    assert len(events(kube)) == 1
    assert kube.find(CUSTOM["DatabaseCluster"], "pay", "old")["spec"]["storage"]["size"] == "30Gi"


async def test_a_namespaced_operator_reports_only_the_namespaces_it_watches() -> None:
    kube, policy = seeded()
    status = await refresh(kube, policy, ("web",), LOG)
    assert [u.namespace for u in status.namespaces] == ["web"] and status.violators == []


async def test_operators_watching_different_namespaces_keep_each_other_s_entries() -> None:
    kube, policy = seeded()
    await refresh(kube, policy, ("pay",), LOG)
    stored = kube.find(CUSTOM["DatabasePolicy"], None, "prod-rules")
    status = await refresh(kube, stored, ("w*",), LOG)  # a glob, as kopf takes them
    assert [u.namespace for u in status.namespaces] == ["pay", "web"]
    assert [v.name for v in status.violators] == ["old"]  # pay's, reported by the other operator
    assert len(events(kube)) == 1
