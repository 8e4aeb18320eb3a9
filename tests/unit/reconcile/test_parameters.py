"""Dynamic parameters are pushed through every member's agent; restart ones roll the template."""

from __future__ import annotations

import json

import pytest

from kubetrove.k8s.kinds import STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.reconcile.errors import NotReady
from kubetrove.reconcile.phases.parameters import APPLIED_DYNAMIC
from kubetrove.render.names import ANNOTATION_CONFIG_HASH
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.conftest import LOG, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube


def seed_pod(kube: FakeKube) -> None:
    labels = {"app.kubernetes.io/name": "mariadb", "app.kubernetes.io/instance": "db"}
    labels["app.kubernetes.io/managed-by"] = "kubetrove"
    meta = {"name": "db-0", "namespace": "ns", "labels": labels}
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"podIP": "10.0.0.5"}})


def template_hash(kube: FakeKube) -> str:
    return kube.find(STATEFULSET, "ns", "db")["spec"]["template"]["metadata"]["annotations"][
        ANNOTATION_CONFIG_HASH
    ]


async def test_dynamic_change_is_pushed_and_recorded_without_a_roll(
    kube: FakeKube, deps: Deps, agents: FakeAgents
) -> None:
    kube.put(body())
    seed_pod(kube)
    await run.reconcile(parsed(parameters={"max_connections": "100"}), None, deps, LOG)
    assert agents.calls == []  # a new StatefulSet starts from the ConfigMap
    before = template_hash(kube)
    await run.reconcile(parsed(generation=2, parameters={"max_connections": "300"}), None, deps, LOG)
    assert agents.calls == [("http://10.0.0.5:8432", "apply_parameters", {"max_connections": "300"})]
    assert template_hash(kube) == before
    record = kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_DYNAMIC]
    assert json.loads(record) == {"max_connections": "300"}


async def test_failed_push_is_retried(kube: FakeKube, deps: Deps, agents: FakeAgents) -> None:
    kube.put(body())
    seed_pod(kube)
    await run.reconcile(parsed(parameters={"max_connections": "100"}), None, deps, LOG)
    agents.unreachable()
    with pytest.raises(NotReady, match=r"db-0: applying \['max_connections'\] failed: agent unreachable"):
        await run.reconcile(parsed(generation=2, parameters={"max_connections": "300"}), None, deps, LOG)
    agents.failures.clear()
    await run.reconcile(parsed(generation=2, parameters={"max_connections": "300"}), None, deps, LOG)
    assert agents.calls == [("http://10.0.0.5:8432", "apply_parameters", {"max_connections": "300"})]


async def test_restart_parameter_changes_the_template(kube: FakeKube, deps: Deps) -> None:
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    before = template_hash(kube)
    await run.reconcile(parsed(generation=2, parameters={"performance_schema": "ON"}), None, deps, LOG)
    assert template_hash(kube) != before


async def test_a_new_statefulset_is_created_with_its_record(kube: FakeKube, deps: Deps) -> None:
    """No patch after the create: the record rides on the applied StatefulSet (and its event)."""
    patched: list[str] = []
    patch = kube.patch

    async def counting(rtype, namespace, name, body, subresource=None):  # type: ignore[no-untyped-def]
        patched.append(rtype.kind)
        return await patch(rtype, namespace, name, body, subresource)

    kube.patch = counting  # type: ignore[method-assign]
    kube.put(body())
    await run.reconcile(parsed(parameters={"max_connections": "100"}), None, deps, LOG)
    assert STATEFULSET.kind not in patched
    record = kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_DYNAMIC]
    assert json.loads(record) == {"max_connections": "100"}
    # Applied again unchanged: the record stays as it was.
    await run.reconcile(parsed(parameters={"max_connections": "100"}), None, deps, LOG)
    assert kube.find(STATEFULSET, "ns", "db")["metadata"]["annotations"][APPLIED_DYNAMIC] == record
    assert STATEFULSET.kind not in patched
