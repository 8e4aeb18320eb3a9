"""Deletion: the finalizer applies spec.deletionPolicy.volumes; every other child goes by owner references."""

from __future__ import annotations

import pytest
from kubernetes import client

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import Operator, apply_cr, example, get_cr, poll, wait_phase


@pytest.mark.parametrize(("name", "kept"), [("mysql-instance", False), ("postgresql-cluster", True)])
def test_delete_follows_the_volume_policy(
    local_cluster: LocalCluster, operator: Operator, namespace: str, name: str, kept: bool
) -> None:
    api = local_cluster.api
    body = example(name, namespace)
    assert body["spec"]["deletionPolicy"]["volumes"] == ("Retain" if kept else "Delete")
    apply_cr(local_cluster, body)
    wait_phase(api, body, "Ready", op=operator)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    claims = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items}
    assert claims

    local_cluster.kubectl(
        "delete", body["kind"].lower(), body["metadata"]["name"], "-n", namespace, "--wait=false"
    )
    poll(lambda: get_cr(api, body["kind"], namespace, body["metadata"]["name"]) is None, "the resource gone")
    poll(lambda: not apps.list_namespaced_stateful_set(namespace).items, "StatefulSet collected")
    poll(lambda: not core.list_namespaced_service(namespace).items, "Services collected")
    poll(lambda: not [s for s in core.list_namespaced_secret(namespace).items if s.type == "Opaque"],
         "Secrets collected")  # fmt: skip

    def remaining() -> set[str]:
        items = core.list_namespaced_persistent_volume_claim(namespace).items
        return {c.metadata.name for c in items if not c.metadata.deletion_timestamp}

    if kept:
        assert remaining() == claims
    else:
        poll(lambda: not remaining(), "PVCs deleted")
