"""A reconcile's Status phase reads the Services as the Apply phase's answers carry them (no GET); a refresh
reads them."""

from __future__ import annotations

import copy

from kubetrove.k8s.kinds import CUSTOM, SERVICE, STATEFULSET
from kubetrove.reconcile import run
from kubetrove.reconcile.context import Deps
from kubetrove.render.names import ChildNames
from tests.unit.fake_agents import FakeAgents
from tests.unit.handlers.test_children import CountingKube
from tests.unit.reconcile.conftest import LOG, NOW, body, parsed

DBI = CUSTOM["DatabaseInstance"]


async def test_reconcile_reads_no_service_and_refresh_reads_them() -> None:
    kube = CountingKube()
    deps = Deps(kube=kube, agent_image="agent:test", clock=lambda: NOW, agents=FakeAgents())
    kube.put(body())
    await run.reconcile(parsed(), None, deps, LOG)
    assert SERVICE.kind not in kube.reads
    cr = kube.find(DBI, "ns", "db")
    assert cr is not None
    assert cr["status"]["endpoints"]["readWrite"].startswith(f"{ChildNames('db').rw_service}.ns.svc:")
    kube.reads.clear()
    await run.refresh(parsed(), cr["status"], deps, LOG, copy.deepcopy(kube.find(STATEFULSET, "ns", "db")))
    assert kube.reads.count(SERVICE.kind) == 2
