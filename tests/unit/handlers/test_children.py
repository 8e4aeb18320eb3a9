"""StatefulSet events refresh their owner from the StatefulSet the event carries, without reading it again."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from kubetrove.handlers.children import statefulset_event
from kubetrove.k8s.kinds import CUSTOM, STATEFULSET, ResourceType
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from tests.unit.fake_agents import FakeAgents
from tests.unit.reconcile.conftest import LOG, NOW, body, parsed
from tests.unit.reconcile.fake_kube import FakeKube

DBI = CUSTOM["DatabaseInstance"]


class CountingKube(FakeKube):
    """The fake API server, counting reads per kind."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    async def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.reads.append(rtype.kind)
        return await super().get(rtype, namespace, name)


@pytest.fixture
def kube() -> CountingKube:
    return CountingKube()


@pytest.fixture
def deps(kube: CountingKube) -> Deps:
    return Deps(kube=kube, agent_image="agent:test", clock=lambda: NOW, agents=FakeAgents())


async def _applied(kube: CountingKube, deps: Deps) -> dict[str, Any]:
    """A reconciled instance; its StatefulSet as a watch event carries it, one member ready (the store
    does not know that yet: only the event says so)."""
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    sts = copy.deepcopy(kube.find(STATEFULSET, "ns", "db"))
    assert sts is not None
    sts["status"] = {
        "observedGeneration": sts["metadata"]["generation"], "replicas": 1, "readyReplicas": 1,
        "updatedReplicas": 1, "currentRevision": "r1", "updateRevision": "r1",
    }  # fmt: skip
    kube.reads.clear()
    return sts


async def test_the_event_body_is_the_observed_statefulset(kube: CountingKube, deps: Deps) -> None:
    sts = await _applied(kube, deps)
    event: Any = {"type": "MODIFIED", "object": sts}
    await statefulset_event(body=kopf.Body(sts), event=event, memo=kopf.Memo(deps=deps), logger=LOG)
    assert STATEFULSET.kind not in kube.reads  # the owner is read, its StatefulSet is not
    assert kube.reads.count(DBI.kind) == 1
    cr = kube.find(DBI, "ns", "db")
    assert cr is not None and cr["status"]["phase"] == "Ready"  # from the event's readyReplicas


async def test_after_a_deletion_the_statefulset_is_read_again(kube: CountingKube, deps: Deps) -> None:
    sts = await _applied(kube, deps)
    event: Any = {"type": "DELETED", "object": sts}
    await statefulset_event(body=kopf.Body(sts), event=event, memo=kopf.Memo(deps=deps), logger=LOG)
    assert STATEFULSET.kind in kube.reads
    cr = kube.find(DBI, "ns", "db")
    assert cr is not None and cr["status"]["phase"] != "Ready"  # the store's StatefulSet: none ready


async def test_the_initial_list_refreshes_nothing(kube: CountingKube, deps: Deps) -> None:
    """kopf's initial list (type None) at the start: the resumes compute every status; no refresh queues."""
    sts = await _applied(kube, deps)
    before = copy.deepcopy(kube.find(DBI, "ns", "db"))
    event: Any = {"type": None, "object": sts}
    await statefulset_event(body=kopf.Body(sts), event=event, memo=kopf.Memo(deps=deps), logger=LOG)
    assert kube.reads == []
    assert kube.find(DBI, "ns", "db") == before
