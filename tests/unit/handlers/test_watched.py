"""The Services the status reads come from what Apply answered or from the watch's index, not a GET."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from kubetrove.handlers.watched import SERVICES, IndexedChildren, from_indexes, service_entry
from kubetrove.k8s.kinds import CUSTOM, SERVICE, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.render.names import ChildNames
from tests.unit.fake_agents import FakeAgents
from tests.unit.handlers.test_children import CountingKube
from tests.unit.reconcile.conftest import LOG, NOW, body, parsed

DBI = CUSTOM["DatabaseInstance"]
NAMES = ChildNames("db")


def _service(name: str, port: int) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "labels": {"app.kubernetes.io/managed-by": "kubetrove"}}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": {"ports": [{"port": port}]}}


class Index(dict[tuple[str, str], list[dict[str, Any]]]):
    """What a kopf index is to its reader: key -> a collection of values."""

    def add(self, entries: dict[tuple[str, str], dict[str, Any]]) -> None:
        for key, value in entries.items():
            self.setdefault(key, []).append(value)


def test_the_entry_keeps_name_and_first_port() -> None:
    svc = _service("db-rw", 3306)
    svc["spec"]["ports"].append({"port": 9104})
    entry = service_entry(kopf.Body(svc))
    assert entry == {("ns", "db-rw"): {"metadata": {"name": "db-rw"}, "spec": {"ports": [{"port": 3306}]}}}


def test_a_service_the_index_does_not_hold_does_not_exist() -> None:
    index = Index()
    index.add(service_entry(kopf.Body(_service("db-rw", 3306))))
    view = IndexedChildren(index)
    assert view.service("ns", "db-rw") == {"metadata": {"name": "db-rw"}, "spec": {"ports": [{"port": 3306}]}}
    assert view.service("ns", "db-ro") is None
    assert view.service("other", "db-rw") is None


def test_without_the_index_every_read_is_a_get() -> None:
    assert from_indexes({}) is None
    assert isinstance(from_indexes({SERVICES: Index()}), IndexedChildren)


async def test_reconcile_reads_no_service_and_refresh_reads_the_index() -> None:
    kube = CountingKube()
    index = Index()
    deps = Deps(
        kube=kube,
        agent_image="agent:test",
        clock=lambda: NOW,
        agents=FakeAgents(),
        watched=IndexedChildren(index),
    )
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    assert SERVICE.kind not in kube.reads  # what Apply answered
    cr = kube.find(DBI, "ns", "db")
    assert cr is not None
    rw = cr["status"]["endpoints"]["readWrite"]
    assert rw.startswith(f"{NAMES.rw_service}.ns.svc:")

    # A refresh: the status follows the index (its ro Service on another port than the store's).
    live = kube.find(SERVICE, "ns", NAMES.rw_service)
    assert live is not None
    index.add(service_entry(kopf.Body(copy.deepcopy(live))))
    index.add(service_entry(kopf.Body(_service(NAMES.ro_service, 4406))))
    sts = kube.find(STATEFULSET, "ns", "db")
    kube.reads.clear()
    await run.refresh(parsed(), cr["status"], deps, LOG, copy.deepcopy(sts))
    assert SERVICE.kind not in kube.reads
    cr = kube.find(DBI, "ns", "db")
    assert cr is not None
    assert cr["status"]["endpoints"] == {"readWrite": rw, "readOnly": f"{NAMES.ro_service}.ns.svc:4406"}
