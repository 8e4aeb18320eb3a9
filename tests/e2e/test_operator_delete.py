"""Deletion: the finalizer applies spec.deletionPolicy.volumes; every other child goes by owner references."""

from __future__ import annotations

import pytest
from kubernetes import client

from kubetrove.render.names import ChildNames

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
    # Retain keeps the Secrets that open the retained data (credentials, generated user passwords).
    names = ChildNames(body["metadata"]["name"])
    users = [u["name"] for u in body["spec"].get("users", []) if "passwordSecretRef" not in u]
    keep = {names.credentials_secret, *map(names.user_secret, users)} if kept else set()

    def opaque() -> set[str]:
        return {s.metadata.name for s in core.list_namespaced_secret(namespace).items if s.type == "Opaque"}

    poll(lambda: opaque() == keep, f"Secrets collected except {sorted(keep)}")
    for name in keep:
        assert not core.read_namespaced_secret(name, namespace).metadata.owner_references

    def remaining() -> set[str]:
        items = core.list_namespaced_persistent_volume_claim(namespace).items
        return {c.metadata.name for c in items if not c.metadata.deletion_timestamp}

    if kept:
        assert remaining() == claims
    else:
        poll(lambda: not remaining(), "PVCs deleted")
