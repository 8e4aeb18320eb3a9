"""Operator restarts: no pod rolls for an unchanged spec, and a reconcile cut short converges."""

from __future__ import annotations

from kubernetes import client

from .conftest import LocalCluster
from .operator_support import *  # noqa: F403  (fixtures)
from .operator_support import Operator, apply_cr, example, poll, wait_phase


def test_restart_does_not_roll_pods(local_cluster: LocalCluster, operator: Operator, namespace: str) -> None:
    api = local_cluster.api
    body = example("postgresql-cluster", namespace)
    # kwok runs no agent: spec.users would keep the handler retrying, and this test waits for its
    # success (users through a real agent: test_operator_users.py).
    body["spec"].pop("users", None)
    body["spec"].pop("databases", None)
    apply_cr(local_cluster, body)
    wait_phase(api, body, "Ready", op=operator)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    before = apps.read_namespaced_stateful_set("postgresql-ha", namespace)
    pods = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_pod(namespace).items}

    operator.stop()
    operator.start()
    # The resume handler re-applies every child of every resource before it reports success.
    poll(lambda: "Handler 'databasecluster_spec' succeeded" in operator.log(), "the resume handler")
    after = apps.read_namespaced_stateful_set("postgresql-ha", namespace)
    assert after.spec.template == before.spec.template
    assert after.spec == before.spec
    assert after.metadata.generation == before.metadata.generation
    assert after.status.update_revision == before.status.update_revision
    assert {p.metadata.name: p.metadata.uid for p in core.list_namespaced_pod(namespace).items} == pods
    wait_phase(api, body, "Ready", op=operator)


def test_restart_mid_reconcile_converges(
    local_cluster: LocalCluster, operator: Operator, namespace: str
) -> None:
    body = example("mongodb-cluster", namespace)
    apply_cr(local_cluster, body)
    # Stop as soon as the first child exists: the handler is cut short (or has just finished).
    core = client.CoreV1Api(local_cluster.api)
    poll(lambda: core.list_namespaced_secret(namespace).items, "the first Secret")
    operator.stop()
    operator.start()
    obj = wait_phase(local_cluster.api, body, "Ready", op=operator)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
